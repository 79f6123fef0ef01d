/**
 * Lists the kernels SegFormer's forward and backward passes run that the wasm backend lacks.
 *
 * Every op SegFormer uses is differentiated (with respect to all its float inputs) on the cpu backend under
 * `tf.profile`, which records the kernel names actually executed, forward and gradient; each name is then looked up
 * in the wasm kernel registry. Then each case is run again on wasm to prove it works end to end.
 * Run: `npx tsx bench/probe-wasm-kernels.ts`
 */
import { ready, tf } from '../src/engine/index.ts';
import { addedKernels } from '../src/engine/kernels/index.ts';

type Case = { name: string; shapes: number[][]; f: (...xs: tf.Tensor[]) => tf.Tensor };

const x4 = [2, 17, 19, 6];
const hp = true;
const conv = (k: number, s: number, pad: 'same' | 'valid' | number): Case => ({
  name: `conv2d k${k} s${s} pad ${pad}`,
  shapes: [x4, [k, k, 6, 8]],
  f: (x, w) =>
    tf.conv2d(
      x as tf.Tensor4D,
      w as tf.Tensor4D,
      s,
      typeof pad === 'number'
        ? [
            [0, 0],
            [pad, pad],
            [pad, pad],
            [0, 0],
          ]
        : pad,
    ),
});

const CASES: Case[] = [
  conv(7, 4, 3),
  conv(3, 2, 1),
  conv(4, 4, 'valid'),
  conv(1, 1, 'valid'),
  {
    name: 'fused conv2d + bias',
    shapes: [x4, [3, 3, 6, 8], [8]],
    f: (x, w, b) =>
      tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 2, pad: 'same', bias: b }),
  },
  {
    name: 'depthwiseConv2d 3x3 + bias',
    shapes: [x4, [3, 3, 6, 1], [6]],
    f: (x, w, b) => tf.add(tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), b),
  },
  {
    name: 'fused depthwiseConv2d + bias, multiplier 2',
    shapes: [x4, [3, 3, 6, 2], [12]],
    f: (x, w, b) =>
      tf.fused.depthwiseConv2d({
        x: x as tf.Tensor4D,
        filter: w as tf.Tensor4D,
        strides: 1,
        pad: 'same',
        bias: b,
      }),
  },
  {
    name: 'matMul b transposed',
    shapes: [
      [5, 7],
      [9, 7],
    ],
    f: (a, b) => tf.matMul(a, b, false, true),
  },
  {
    name: 'batchMatMul a transposed',
    shapes: [
      [2, 3, 5, 7],
      [2, 3, 5, 9],
    ],
    f: (a, b) => tf.matMul(a, b, true, false),
  },
  {
    name: 'fused matMul + bias',
    shapes: [[5, 7], [7, 9], [9]],
    f: (a, b, c) => tf.fused.matMul({ a, b, bias: c }),
  },
  { name: 'softmax', shapes: [[2, 3, 5, 7]], f: (a) => tf.softmax(a) },
  { name: 'logSoftmax', shapes: [[4, 7]], f: (a) => tf.logSoftmax(a) },
  {
    name: 'layerNorm via moments',
    shapes: [[2, 10, 8], [8], [8]],
    f: (t, g, b) => {
      const { mean, variance } = tf.moments(t, -1, true);
      return tf.add(tf.mul(tf.mul(tf.sub(t, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
    },
  },
  {
    name: 'exact gelu (erf)',
    shapes: [[3, 8]],
    f: (t) => tf.mul(tf.mul(t, 0.5), tf.add(1, tf.erf(tf.div(t, Math.SQRT2)))),
  },
  {
    name: 'resizeBilinear up',
    shapes: [x4],
    f: (x) => tf.image.resizeBilinear(x as tf.Tensor4D, [34, 38], false, hp),
  },
  {
    name: 'resizeBilinear down',
    shapes: [x4],
    f: (x) => tf.image.resizeBilinear(x as tf.Tensor4D, [9, 7], false, hp),
  },
  {
    name: 'batchNorm (running stats)',
    shapes: [x4, [6], [6], [6], [6]],
    f: (x, m, v, o, s) => tf.batchNorm(x, m, tf.add(tf.abs(v), 1), o, s, 1e-5),
  },
  {
    name: 'batchNorm (batch stats)',
    shapes: [x4, [6], [6]],
    f: (x, o, s) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return tf.batchNorm(x, mean, variance, o, s, 1e-5);
    },
  },
  { name: 'relu', shapes: [[3, 8]], f: (t) => tf.relu(t) },
  { name: 'dropout', shapes: [[3, 8]], f: (t) => tf.dropout(t, 0.1) },
  {
    name: 'dropout via randomUniform mask',
    shapes: [[3, 8]],
    f: (t) => tf.mul(t, tf.div(tf.cast(tf.greaterEqual(tf.randomUniform([3, 8]), 0.1), 'float32'), 0.9)),
  },
  { name: 'transpose', shapes: [[2, 3, 4, 5]], f: (t) => tf.transpose(t, [0, 2, 1, 3]) },
  { name: 'reshape', shapes: [[2, 3, 4]], f: (t) => tf.reshape(t, [6, 4]) },
  {
    name: 'concat',
    shapes: [
      [2, 3, 4],
      [2, 3, 5],
    ],
    f: (a, b) => tf.concat([a, b], -1),
  },
  {
    name: 'pad',
    shapes: [[2, 3, 4]],
    f: (t) =>
      tf.pad(t, [
        [0, 0],
        [1, 2],
        [3, 0],
      ]),
  },
  { name: 'slice', shapes: [[2, 5, 4]], f: (t) => tf.slice(t, [0, 1, 1], [2, 3, 2]) },
  { name: 'sum + mean', shapes: [[2, 5, 4]], f: (t) => tf.add(tf.sum(t, 1), tf.mean(t, 1)) },
  {
    name: 'square / sqrt / div',
    shapes: [
      [3, 4],
      [3, 4],
    ],
    f: (a, b) => tf.div(tf.square(a), tf.sqrt(tf.add(tf.abs(b), 1))),
  },
  { name: 'maximum / minimum', shapes: [[3, 4]], f: (t) => tf.minimum(tf.maximum(t, 0), 1) },
  {
    name: 'softmax cross-entropy',
    shapes: [[3, 3]],
    f: (t) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([1, 0, 2], 'int32'), 3), t),
  },
  {
    name: 'sigmoid / clip / log',
    shapes: [[3, 4]],
    f: (t) => tf.log(tf.clipByValue(tf.sigmoid(t), 1e-6, 1)),
  },
  {
    name: 'AdamW-style update ops',
    shapes: [
      [3, 4],
      [3, 4],
    ],
    f: (p, g) => tf.sub(p, tf.mul(0.1, tf.div(tf.square(g), tf.add(tf.sqrt(tf.abs(g)), 1e-8)))),
  },
];

/** Runs forward + gradient of every input; returns the kernel names executed. */
async function kernelsRun(c: Case): Promise<string[]> {
  const inputs = c.shapes.map((s) => tf.randomNormal(s));
  const info = await tf.profile(() => tf.grads((...xs: tf.Tensor[]) => tf.sum(c.f(...xs)))(inputs));
  tf.dispose(inputs);
  return info.kernelNames;
}

await ready('cpu');
const used = new Map<string, string[]>();
for (const c of CASES) {
  try {
    used.set(c.name, await kernelsRun(c));
  } catch (e) {
    console.log(`  cpu FAILS ${c.name}: ${(e as Error).message.split('\n')[0]}`);
  }
}
await ready('wasm');
const all = new Set([...used.values()].flat());
// Names ending in __op are customGrad scopes recorded by the profiler, not kernels.
const missing = [...all].filter((k) => !k.endsWith('__op') && tf.getKernel(k, 'wasm') == null).sort();
console.log(`${all.size} distinct kernels run by forward + backward of ${CASES.length} op cases`);
console.log(`missing on wasm: ${missing.join(', ') || '(none)'}`);
const ours = addedKernels().filter((k) => k.startsWith('wasm_') && all.has(k.slice(5)));
console.log(
  `run and provided by src/engine/kernels (absent from stock tfjs wasm): ${ours.map((k) => k.slice(5)).join(', ')}`,
);
for (const [name, ks] of used) {
  const m = [...new Set(ks.filter((k) => missing.includes(k)))];
  if (m.length) console.log(`  ${name}: ${m.join(', ')}`);
}
let failures = 0;
for (const c of CASES) {
  try {
    await kernelsRun(c);
  } catch (e) {
    failures++;
    console.log(`  wasm FAILS ${c.name}: ${(e as Error).message.split('\n')[0]}`);
  }
}
console.log(`wasm end-to-end: ${CASES.length - failures}/${CASES.length} cases ran`);

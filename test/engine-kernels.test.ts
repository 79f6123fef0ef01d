/**
 * The wasm training kernels of src/engine/kernels against the cpu backend (and, for the bilinear-resize gradient,
 * against the exact transpose of the cpu forward, since tfjs's own gradient ignores halfPixelCenters).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import { stockKernel } from '../src/engine/kernels/index.ts';

type Inputs = Record<string, { shape: number[]; values: Float32Array }>;

/** Deterministic uniform(-1, 1) values (mulberry32), so cpu and wasm see identical inputs. */
function randomValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1;
  }
  return out;
}

let seed = 1;
function rand(shape: number[], fixedSeed?: number): { shape: number[]; values: Float32Array } {
  return {
    shape,
    values: randomValues(
      shape.reduce((a, b) => a * b, 1),
      fixedSeed ?? seed++,
    ),
  };
}

async function runOn(backend: string, name: string, inputs: Inputs, attrs: object): Promise<tf.Tensor> {
  await ready(backend);
  const ts: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) ts[k] = tf.tensor(v.values, v.shape);
  const out = tf.engine().runKernel(name, ts, attrs as never) as tf.Tensor;
  tf.dispose(Object.values(ts));
  return out;
}

/** Max-norm relative error ||a - b||inf / ||b||inf. */
function relError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length, 'element count');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

function assertClose(actual: tf.Tensor, expectedShape: number[], expected: Float32Array, what: string): void {
  assert.deepEqual(actual.shape, expectedShape, `${what}: shape`);
  const err = relError(actual.dataSync() as Float32Array, expected);
  assert.ok(err <= 1e-4, `${what}: relative error ${err.toExponential(2)} > 1e-4`);
}

/** Runs a kernel on cpu, then on wasm, and compares. */
async function compareKernel(
  name: string,
  inputs: Inputs,
  attrs: object,
  what: string,
  cpuInputs: Inputs = inputs,
): Promise<void> {
  const cpu = await runOn('cpu', name, cpuInputs, attrs);
  const expected = cpu.dataSync() as Float32Array;
  const shape = cpu.shape;
  cpu.dispose();
  const wasm = await runOn('wasm', name, inputs, attrs);
  assertClose(wasm, shape, expected, `${name} ${what}`);
  wasm.dispose();
}

type Pad = 'same' | 'valid' | number[][];
interface ConvCase {
  x: number[];
  filter: number[];
  strides: number | [number, number];
  pad: Pad;
}

function outShapeOf(c: ConvCase, depthwise: boolean): number[] {
  const info = tf.backend_util.computeConv2DInfo(
    c.x as [number, number, number, number],
    c.filter as [number, number, number, number],
    c.strides,
    1,
    c.pad as 'same',
    undefined,
    depthwise,
  );
  return info.outShape;
}

const explicit = (t: number, b: number, l: number, r: number) => [
  [0, 0],
  [t, b],
  [l, r],
  [0, 0],
];

const CONV_CASES: ConvCase[] = [
  { x: [2, 17, 19, 3], filter: [7, 7, 3, 8], strides: 4, pad: explicit(3, 3, 3, 3) }, // SegFormer stage-1 embed
  { x: [1, 15, 13, 6], filter: [3, 3, 6, 10], strides: 2, pad: explicit(1, 1, 1, 1) }, // stages 2-4 embed
  { x: [2, 16, 24, 4], filter: [4, 4, 4, 4], strides: 4, pad: 'valid' }, // efficient-attention reduction
  { x: [3, 9, 11, 5], filter: [3, 3, 5, 7], strides: 1, pad: 'same' },
  { x: [2, 10, 9, 4], filter: [3, 3, 4, 6], strides: 2, pad: 'same' },
  { x: [2, 7, 9, 12], filter: [1, 1, 12, 5], strides: 1, pad: 'valid' }, // pointwise fast path
  { x: [1, 7, 9, 3], filter: [1, 1, 3, 4], strides: 2, pad: 'valid' },
  { x: [2, 11, 8, 3], filter: [5, 3, 3, 4], strides: [2, 1], pad: 'valid' },
  { x: [1, 8, 8, 2], filter: [3, 3, 2, 3], strides: 2, pad: explicit(0, 2, 1, 0) }, // asymmetric padding
];

const DEPTHWISE_CASES: ConvCase[] = [
  { x: [2, 16, 12, 8], filter: [3, 3, 8, 1], strides: 1, pad: 'same' }, // SegFormer Mix-FFN
  { x: [1, 9, 11, 3], filter: [3, 3, 3, 2], strides: 1, pad: 'same' }, // channel multiplier 2
  { x: [3, 11, 9, 4], filter: [5, 5, 4, 3], strides: 2, pad: 'same' },
  { x: [2, 10, 7, 5], filter: [3, 3, 5, 1], strides: 2, pad: 'valid' },
  { x: [1, 8, 9, 6], filter: [3, 3, 6, 1], strides: 1, pad: explicit(1, 1, 1, 1) },
  { x: [2, 6, 7, 2], filter: [2, 4, 2, 2], strides: [1, 2], pad: explicit(0, 1, 2, 1) },
];

const describeCase = (c: ConvCase) =>
  `x ${c.x} filter ${c.filter} strides ${c.strides} pad ${typeof c.pad === 'string' ? c.pad : JSON.stringify(c.pad)}`;

before(async () => {
  await ready('wasm');
});

describe('Conv2D gradients on wasm match cpu', () => {
  for (const c of CONV_CASES) {
    it(`Conv2DBackpropFilter ${describeCase(c)}`, async () => {
      const dy = rand(outShapeOf(c, false));
      const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape: c.filter };
      await compareKernel('Conv2DBackpropFilter', { x: rand(c.x), dy }, attrs, describeCase(c));
    });
    it(`Conv2DBackpropInput ${describeCase(c)}`, async () => {
      const dy = rand(outShapeOf(c, false));
      const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: c.x };
      await compareKernel('Conv2DBackpropInput', { dy, filter: rand(c.filter) }, attrs, describeCase(c));
    });
  }
});

describe('Depthwise conv2d gradients on wasm match cpu', () => {
  for (const c of DEPTHWISE_CASES) {
    it(`DepthwiseConv2dNativeBackpropFilter ${describeCase(c)}`, async () => {
      const dy = rand(outShapeOf(c, true));
      const attrs = { strides: c.strides, pad: c.pad, dilations: 1, filterShape: c.filter };
      await compareKernel(
        'DepthwiseConv2dNativeBackpropFilter',
        { x: rand(c.x), dy },
        attrs,
        describeCase(c),
      );
    });
    it(`DepthwiseConv2dNativeBackpropInput ${describeCase(c)}`, async () => {
      const dy = rand(outShapeOf(c, true));
      const attrs = { strides: c.strides, pad: c.pad, dilations: 1, inputShape: c.x };
      await compareKernel(
        'DepthwiseConv2dNativeBackpropInput',
        { dy, filter: rand(c.filter) },
        attrs,
        describeCase(c),
      );
    });
  }

  it('rejects dilation > 1 with a clear error', async () => {
    const c = DEPTHWISE_CASES[0];
    const dy = rand(outShapeOf(c, true));
    await assert.rejects(
      runOn(
        'wasm',
        'DepthwiseConv2dNativeBackpropFilter',
        { x: rand(c.x), dy },
        { strides: 1, pad: 'same', dilations: 2, filterShape: c.filter },
      ),
      /dilation 1 only/,
    );
    await assert.rejects(
      runOn(
        'wasm',
        'DepthwiseConv2dNativeBackpropInput',
        { dy, filter: rand(c.filter) },
        { strides: 1, pad: 'same', dilations: [1, 2], inputShape: c.x },
      ),
      /dilation 1 only/,
    );
    await assert.rejects(
      runOn(
        'wasm',
        'Conv2DBackpropFilter',
        { x: rand(c.x), dy },
        { strides: 1, pad: 'same', dilations: 2, filterShape: [3, 3, 8, 8] },
      ),
      /dilation 1 only/,
    );
  });
});

describe('BatchMatMul and _FusedMatMul on wasm match cpu', () => {
  const cases: [number[], number[], boolean, boolean][] = [
    [[37, 29], [29, 23], false, false],
    [[29, 37], [29, 23], true, false],
    [[37, 29], [23, 29], false, true],
    [[29, 37], [23, 29], true, true],
    [[2, 3, 17, 8], [2, 3, 8, 13], false, false], // attention heads
    [[2, 3, 17, 8], [2, 3, 13, 8], false, true], // Q K^T
    [[2, 3, 8, 17], [2, 3, 8, 13], true, false],
    [[3, 31, 16], [1, 16, 9], false, false], // linear layer on a batch, b broadcast
    [[1, 31, 16], [4, 16, 9], false, false], // a broadcast
    [[1, 16, 31], [6, 16, 9], true, false], // a broadcast and transposed (resize-gradient matrices)
    [[1, 31, 16], [2, 3, 9, 16], false, true],
    [[1, 1, 6], [1, 6, 1], false, false],
  ];
  for (const [sa, sb, ta, tb] of cases) {
    it(`a ${sa} b ${sb} transposeA ${ta} transposeB ${tb}`, async () => {
      await compareKernel(
        'BatchMatMul',
        { a: rand(sa), b: rand(sb) },
        { transposeA: ta, transposeB: tb },
        '',
      );
    });
  }
  it('a 2,1,5,7 b 1,3,7,4: both broadcast (cpu is given the broadcast copies: its kernel mishandles this)', async () => {
    const a = rand([2, 1, 5, 7]);
    const b = rand([1, 3, 7, 4]);
    await ready('cpu');
    const tiled = (v: { shape: number[]; values: Float32Array }, reps: number[]) => {
      const t = tf.tile(tf.tensor(v.values, v.shape), reps);
      const out = { shape: t.shape, values: t.dataSync() as Float32Array };
      t.dispose();
      return out;
    };
    const cpuInputs = { a: tiled(a, [1, 3, 1, 1]), b: tiled(b, [2, 1, 1, 1]) };
    await compareKernel('BatchMatMul', { a, b }, { transposeA: false, transposeB: false }, '', cpuInputs);
  });
  it('_FusedMatMul with bias and relu, transposed b', async () => {
    const attrs = { transposeA: false, transposeB: true, activation: 'relu' };
    await compareKernel(
      '_FusedMatMul',
      { a: rand([2, 19, 12]), b: rand([2, 7, 12]), bias: rand([7]) },
      attrs,
      '',
    );
  });
  it('_FusedMatMul linear without bias', async () => {
    const attrs = { transposeA: true, transposeB: false, activation: 'linear' };
    await compareKernel('_FusedMatMul', { a: rand([1, 12, 19]), b: rand([1, 12, 7]) }, attrs, '');
  });
});

const RESIZE_CASES: { x: number[]; size: [number, number] }[] = [
  { x: [2, 5, 7, 3], size: [20, 28] }, // x4 up, non-square
  { x: [1, 4, 4, 2], size: [16, 16] },
  { x: [1, 9, 6, 2], size: [4, 5] }, // down
  { x: [2, 3, 5, 4], size: [7, 11] }, // odd ratio
];
const FLAGS: [boolean, boolean][] = [
  [false, true], // PyTorch align_corners=False
  [false, false],
  [true, false],
];

describe('ResizeBilinear and its gradient', () => {
  for (const { x, size } of RESIZE_CASES) {
    for (const [alignCorners, halfPixelCenters] of FLAGS) {
      const what = `x ${x} -> ${size} alignCorners ${alignCorners} halfPixelCenters ${halfPixelCenters}`;
      it(`forward on wasm matches cpu, ${what}`, async () => {
        await compareKernel(
          'ResizeBilinear',
          { images: rand(x) },
          { alignCorners, halfPixelCenters, size },
          what,
        );
      });
      it(`gradient on wasm and cpu is the transpose of the cpu forward, ${what}`, async () => {
        // Column j of the forward's matrix is forward(e_j); the gradient must be dx_j = <forward(e_j), dy>.
        await ready('cpu');
        const n = x.reduce((a, b) => a * b, 1);
        const dyShape = [x[0], size[0], size[1], x[3]];
        const dy = rand(dyShape);
        const expected = tf.tidy(() => {
          const eye = tf.reshape(tf.eye(n), [n, ...x]); // [n, b, h, w, c]
          const flat = tf.reshape(eye, [n * x[0], x[1], x[2], x[3]]);
          const cols = tf.image.resizeBilinear(flat as tf.Tensor4D, size, alignCorners, halfPixelCenters);
          const perBasis = tf.reshape(cols, [n, ...dyShape]);
          return tf.sum(tf.mul(perBasis, tf.tensor(dy.values, dyShape)), [1, 2, 3, 4]);
        });
        const want = expected.dataSync() as Float32Array;
        expected.dispose();
        const attrs = { alignCorners, halfPixelCenters };
        for (const backend of ['cpu', 'wasm']) {
          const got = await runOn(backend, 'ResizeBilinearGrad', { images: rand(x), dy }, attrs);
          assertClose(got, x, want, `ResizeBilinearGrad on ${backend}, ${what}`);
          got.dispose();
        }
      });
    }
  }

  it('matches the stock tfjs cpu gradient where that one is right (square, no half-pixel)', async () => {
    const stock = stockKernel('ResizeBilinearGrad', 'cpu');
    assert.ok(stock, 'stock cpu ResizeBilinearGrad recorded');
    await ready('cpu');
    const images = tf.tensor(rand([2, 6, 6, 3]).values, [2, 6, 6, 3]);
    const dy = tf.tensor(rand([2, 15, 15, 3]).values, [2, 15, 15, 3]);
    const attrs = { alignCorners: false, halfPixelCenters: false };
    const backend = tf.backend();
    const info = stock.kernelFunc({ inputs: { images, dy }, backend, attrs }) as tf.TensorInfo;
    const expected = tf.engine().makeTensorFromTensorInfo(info);
    const want = expected.dataSync() as Float32Array;
    const got = tf.engine().runKernel('ResizeBilinearGrad', { images, dy }, attrs) as tf.Tensor;
    assertClose(got, [2, 6, 6, 3], want, 'ResizeBilinearGrad vs stock cpu');
    tf.dispose([images, dy, expected, got]);
  });
});

describe('gradients of a small SegFormer-like graph on wasm match cpu', () => {
  it('conv 7x7/4, depthwise 3x3, attention matmuls, resize, layer norm', async () => {
    const x = rand([2, 32, 28, 3], 1000);
    const shapes = [[7, 7, 3, 8], [3, 3, 8, 1], [8], [8, 8], [2, 2, 8, 8], [1, 1, 8, 4]];
    const params = shapes.map((s, i) => rand(s, 1001 + i));
    const run = async (backend: string) => {
      await ready(backend);
      const vars = params.map((p) => tf.tensor(p.values, p.shape));
      const input = tf.tensor4d(x.values, x.shape as [number, number, number, number]);
      const loss = (
        w1: tf.Tensor,
        dw: tf.Tensor,
        db: tf.Tensor,
        q: tf.Tensor,
        sr: tf.Tensor,
        head: tf.Tensor,
      ) => {
        let h = tf.conv2d(input, w1 as tf.Tensor4D, 4, explicit(3, 3, 3, 3) as never); // [2, 8, 7, 8]
        h = tf.add(tf.depthwiseConv2d(h, dw as tf.Tensor4D, 1, 'same'), db);
        const tokens = tf.reshape(h, [112, 8]);
        const { mean, variance } = tf.moments(tokens, -1, true);
        const normed = tf.mul(tf.sub(tokens, mean), tf.rsqrt(tf.add(variance, 1e-5)));
        const queries = tf.reshape(tf.matMul(normed, q), [2, 56, 8]);
        const reduced = tf.reshape(tf.conv2d(h, sr as tf.Tensor4D, 2, 'valid'), [2, 12, 8]);
        const attn = tf.softmax(tf.matMul(queries, reduced, false, true));
        const mixed = tf.reshape(tf.matMul(attn, reduced), [2, 8, 7, 8]);
        const up = tf.image.resizeBilinear(tf.erf(mixed) as tf.Tensor4D, [32, 28], false, true);
        return tf.sum(tf.square(tf.conv2d(up, head as tf.Tensor4D, 1, 'valid'))) as tf.Scalar;
      };
      const grads = tf.grads(loss as never)(vars);
      const out = grads.map((g) => ({ shape: g.shape, values: g.dataSync() as Float32Array }));
      tf.dispose([...vars, ...grads, input]);
      return out;
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    for (let i = 0; i < cpu.length; i++) {
      assert.deepEqual(wasm[i].shape, cpu[i].shape);
      const err = relError(wasm[i].values, cpu[i].values);
      // A chain of ~20 float32 ops summed in different orders by XNNPACK and the cpu loops: 1e-3, not 1e-4.
      assert.ok(err <= 1e-3, `gradient of parameter ${i}: relative error ${err.toExponential(2)}`);
    }
  });
});

describe('Sum on wasm matches cpu', () => {
  for (const [shape, axis, keepDims] of [
    [[300, 17], 0, false], // bias gradient
    [[2, 9, 7, 5], [0, 1, 2], false],
    [[2, 9, 7, 5], [1, 0], true],
    [[4, 6], 1, false], // innermost: stock kernel
    [[3, 4, 5], [0, 2], false], // not a prefix: stock kernel
    [[5], 0, false], // everything: stock kernel
  ] as [number[], number | number[], boolean][]) {
    it(`sum ${shape} over ${axis} keepDims ${keepDims}`, async () => {
      await compareKernel('Sum', { x: rand(shape) }, { axis, keepDims }, '');
    });
  }
});

describe('Slice and SplitV on wasm match cpu', () => {
  const slices: [number[], number[], number[]][] = [
    [
      [2, 6, 5, 8],
      [0, 1, 2, 3],
      [2, 4, 2, 4],
    ], // every axis partial
    [
      [2, 6, 5, 8],
      [1, 0, 0, 0],
      [1, 6, 5, 8],
    ], // contiguous
    [
      [2, 6, 5, 8],
      [0, 2, 0, 0],
      [2, 3, 5, 8],
    ], // whole trailing axes
    [
      [7, 9],
      [3, 2],
      [4, -1],
    ],
    [[11], [4], [5]],
    [
      [3, 4, 5],
      [0, 0, 5],
      [3, 4, 0],
    ], // empty
  ];
  for (const [shape, begin, size] of slices) {
    it(`slice ${shape} begin ${begin} size ${size}`, async () => {
      await compareKernel('Slice', { x: rand(shape) }, { begin, size }, '');
    });
  }
  it('slice of int32 and bool tensors', async () => {
    await ready('wasm');
    const ints = tf.tensor3d([...Array(24).keys()], [2, 3, 4], 'int32');
    assert.deepEqual(tf.slice(ints, [1, 1, 1], [1, 2, 2]).arraySync(), [
      [
        [17, 18],
        [21, 22],
      ],
    ]);
    const bools = tf.tensor2d([true, false, true, true, false, false], [2, 3], 'bool');
    assert.deepEqual(tf.slice(bools, [0, 1], [2, 2]).arraySync(), [
      [0, 1],
      [0, 0],
    ]);
    tf.dispose([ints, bools]);
  });
  for (const [shape, splits, axis] of [
    [[2, 4, 4, 12], [3, 4, 5], 3],
    [[2, 4, 4, 12], 4, -1],
    [[3, 5, 2], [2, 3], 1],
    [[6, 5], 3, 0],
  ] as [number[], number | number[], number][]) {
    it(`splitV ${shape} into ${splits} along ${axis}`, async () => {
      const x = rand(shape);
      const pieces = async (backend: string) => {
        await ready(backend);
        const t = tf.tensor(x.values, x.shape);
        const out = tf.split(t, splits, axis);
        const res = out.map((p) => ({ shape: p.shape, values: p.dataSync() as Float32Array }));
        tf.dispose([t, ...out]);
        return res;
      };
      const cpu = await pieces('cpu');
      const wasm = await pieces('wasm');
      assert.equal(wasm.length, cpu.length);
      for (let i = 0; i < cpu.length; i++) {
        assert.deepEqual(wasm[i].shape, cpu[i].shape);
        assert.deepEqual(Array.from(wasm[i].values), Array.from(cpu[i].values));
      }
    });
  }
});

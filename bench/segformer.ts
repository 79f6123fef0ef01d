/**
 * SegFormer MiT-B0 on TF.js: 512x512 batch-1 inference forward and a 256x256 batch-2 training step
 * (forward + upsampled cross-entropy + backward + AdamW), medians of several runs, on one backend.
 * `bench/run.ts` runs it per backend next to PyTorch (`bench/segformer_torch.py`, same model and config).
 *
 * Run: `npx tsx bench/segformer.ts --backend wasm [--runs 5] [--profile] [--no-warmup]`; prints one JSON line on stdout.
 * `--profile` adds the kernels taking the most time (tf.profile) to the JSON, for each measured task.
 */
import { parseArgs } from 'node:util';
import { ready, tf } from '../src/engine/index.ts';
import { Segformer, segformerPreset } from '../src/models/segformer/index.ts';
import { AdamW } from '../src/optim/adamw.ts';

export interface SegformerTiming {
  backend: string;
  parameters: number;
  forward_512_b1_ms: number;
  forward_512_b1_unfolded_ms: number;
  train_step_256_b2_ms: number;
  runs: number;
  profile?: Record<string, { kernel: string; ms: number; calls: number }[]>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

let warmUp = true;

function medianMs(label: string, runs: number, fn: () => void): number {
  if (warmUp) fn(); // kernel setup, XNNPACK operator creation, heap growth
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
    process.stderr.write(`  ${label}: run ${i + 1}/${runs} ${times[i].toFixed(0)} ms\n`);
  }
  return median(times);
}

/** Total kernel time by kernel name over one call of `fn`, largest first. */
async function topKernels(fn: () => tf.Tensor | tf.Tensor[] | undefined, top = 12) {
  const info = await tf.profile(fn as () => tf.Tensor);
  const byName = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : ((await k.kernelTimeMs) as number);
    const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls++;
    byName.set(k.name, e);
  }
  return [...byName]
    .map(([kernel, e]) => ({ kernel, ms: Math.round(e.ms * 10) / 10, calls: e.calls }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top);
}

export async function benchSegformer(
  backend: string,
  runs: number,
  profile: boolean,
): Promise<SegformerTiming> {
  await ready(backend);
  const numLabels = 2;
  const model = new Segformer(segformerPreset('b0', { numLabels }), { seed: 0 });
  const x512 = tf.randomNormal([1, 512, 512, 3]) as tf.Tensor4D;
  const forward = (unfoldedDecoder: boolean) => () => {
    const logits = tf.tidy(() => model.forward(x512, { training: false, unfoldedDecoder }).logits);
    logits.dataSync();
    logits.dispose();
  };
  const forwardMs = medianMs(`${backend} forward 512`, runs, forward(false));
  const forwardUnfoldedMs = medianMs(`${backend} forward 512 unfolded`, runs, forward(true));

  const trainable = model.paramSpecs().filter((s) => s.trainable);
  const weights = model.namedWeights();
  const params = new Map(trainable.map((s) => [s.key, weights.get(s.key) as tf.Variable]));
  const byVarName = new Map([...params].map(([key, v]) => [v.name, key]));
  const optimizer = new AdamW([{ params }], { lr: 6e-5, weightDecay: 0.01 });
  const x256 = tf.randomNormal([2, 256, 256, 3]) as tf.Tensor4D;
  const labels = tf.oneHot(tf.randomUniform([2, 256, 256], 0, numLabels, 'int32') as tf.Tensor3D, numLabels);
  const lossFn = () =>
    tf.tidy(() => {
      const { logits } = model.forward(x256, { training: true });
      const up = tf.image.resizeBilinear(logits, [256, 256], false, true);
      return tf.losses.softmaxCrossEntropy(labels, up) as tf.Scalar;
    });
  const step = () => {
    const { value, grads } = tf.variableGrads(lossFn, [...params.values()]);
    const named = new Map(Object.entries(grads).map(([name, g]) => [byVarName.get(name) as string, g]));
    optimizer.step(named);
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };
  const trainMs = medianMs(`${backend} train step 256x2`, runs, step);

  const result: SegformerTiming = {
    backend,
    parameters: model.numParameters(),
    forward_512_b1_ms: forwardMs,
    forward_512_b1_unfolded_ms: forwardUnfoldedMs,
    train_step_256_b2_ms: trainMs,
    runs,
  };
  if (profile) {
    result.profile = {
      forward_512_b1: await topKernels(() => model.forward(x512, { training: false }).logits),
      train_step_256_b2: await topKernels(() => {
        const { value, grads } = tf.variableGrads(lossFn, [...params.values()]);
        return [value, ...Object.values(grads)];
      }),
    };
  }
  tf.dispose([x512, x256, labels]);
  optimizer.dispose();
  model.dispose();
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string', default: 'wasm' },
      runs: { type: 'string', default: '5' },
      profile: { type: 'boolean', default: false },
      // The cpu backend has nothing to warm up and takes minutes per step.
      'no-warmup': { type: 'boolean', default: false },
    },
  });
  warmUp = !values['no-warmup'];
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`bench/segformer.ts: --runs must be a positive integer`);
  console.log(
    JSON.stringify(await benchSegformer(values.backend as string, runs, values.profile as boolean)),
  );
}

/**
 * One shard of one training step: the batch's samples are drawn each from its own generator seeded by
 * (seed, step, micro-batch, sample), so any thread can build exactly its slice of the batch, and the
 * gradient of a shard is the same whichever thread computes it.
 */

import { normaliseInto } from '../core/sliding.ts';
import { tf } from '../engine/index.ts';
import type { Segformer } from '../models/segformer/index.ts';
import { augment, type Sample } from '../patching/augment.ts';
import { createRng, mixSeed } from '../patching/random.ts';
import type { TrainConfig } from './config.ts';

/** Sample indices [start, end) of shard `shard` out of `shards` for a batch of `batch` samples. */
export function shardRange(batch: number, shard: number, shards: number): [number, number] {
  const base = Math.floor(batch / shards);
  const extra = batch % shards;
  const start = shard * base + Math.min(shard, extra);
  return [start, start + base + (shard < extra ? 1 : 0)];
}

/**
 * Samples [start, end) of the batch of (step, micro-batch k), as normalised NHWC images and int labels. From a
 * pool (`train`), position b picks a sample at random; with `fixed`, `train` is the batch itself (patches read
 * online for this micro-batch) and position b augments `train[b]`.
 */
export function makeBatch(
  train: Sample[],
  cfg: TrainConfig,
  step: number,
  k: number,
  start = 0,
  end = cfg.batchSize,
  fixed = false,
): { x: tf.Tensor4D; y: tf.Tensor3D } {
  const micro = mixSeed(cfg.seed, step * cfg.optim.accumulate + k);
  const crop = cfg.augment.crop;
  const n = end - start;
  const xs = new Float32Array(n * crop * crop * 3);
  const ys = new Int32Array(n * crop * crop);
  for (let b = start; b < end; b++) {
    const rng = createRng(mixSeed(micro, b));
    const s = augment(
      fixed ? train[b]! : train[rng.int(train.length)]!,
      { ...cfg.augment, ignoreIndex: cfg.data.ignoreIndex },
      rng,
    );
    normaliseInto(s.image, crop * crop, xs, (b - start) * crop * crop * 3);
    for (let i = 0; i < crop * crop; i++) ys[(b - start) * crop * crop + i] = s.mask[i]!;
  }
  return { x: tf.tensor4d(xs, [n, crop, crop, 3]), y: tf.tensor3d(ys, [n, crop, crop], 'int32') };
}

export interface ShardContext {
  model: Segformer;
  samples: Sample[];
  cfg: TrainConfig;
  loss: (pred: tf.Tensor, target: tf.Tensor) => tf.Scalar;
  /** Trainable variables and their Hugging Face keys, in a fixed order shared by all threads. */
  keys: string[];
  variables: tf.Variable[];
}

export function shardContextKeys(model: Segformer): { keys: string[]; variables: tf.Variable[] } {
  const trainable = new Set(model.trainableVariables());
  const entries = [...model.namedWeights()]
    .filter(([, v]) => trainable.has(v))
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return { keys: entries.map(([k]) => k), variables: entries.map(([, v]) => v) };
}

/**
 * Loss and gradients of shard `shard`/`shards` of micro-batch k of `step`, scaled so that summing the shards and
 * micro-batches gives the gradient of the mean loss. Gradients are keyed by Hugging Face name.
 */
export function shardGradients(
  ctx: ShardContext,
  step: number,
  k: number,
  shard: number,
  shards: number,
  /** The micro-batch's patches when they are read online (all `batchSize` of them). */
  batch?: Sample[],
): { loss: number; grads: Map<string, tf.Tensor> } {
  const { cfg } = ctx;
  const [start, end] = shardRange(cfg.batchSize, shard, shards);
  const grads = new Map<string, tf.Tensor>();
  if (end <= start) return { loss: 0, grads };
  const weight = (end - start) / cfg.batchSize / cfg.optim.accumulate;
  const { x, y } = batch
    ? makeBatch(batch, cfg, step, k, start, end, true)
    : makeBatch(ctx.samples, cfg, step, k, start, end);
  const dropoutSeed = mixSeed(mixSeed(cfg.seed ^ 0xd0, step * cfg.optim.accumulate + k), shard);
  let result: { value: tf.Scalar; grads: tf.NamedTensorMap };
  try {
    result = tf.variableGrads(() => {
      const logits = ctx.model.forward(x, { training: true, seed: dropoutSeed }).logits;
      const up = tf.image.resizeBilinear(logits, [x.shape[1], x.shape[2]], false, true);
      return ctx.loss(up, y);
    }, ctx.variables);
  } catch (e) {
    // The wasm heap is 32-bit: a slice whose activations need more than 4 GB fails deep inside the backend.
    if ((e as Error).name === 'RuntimeError' || /memory access out of bounds|Aborted/.test(String(e))) {
      throw new Error(
        `out of wasm memory on a slice of ${end - start} crops of ${cfg.augment.crop} px (the wasm heap is limited to 4 GB per thread): lower batchSize or augment.crop, use optim.accumulate, or more workers`,
      );
    }
    throw e;
  }
  const { value, grads: g } = result;
  const loss = value.dataSync()[0]!;
  if (!Number.isFinite(loss)) {
    tf.dispose([x, y, value, ...Object.values(g)]);
    throw new Error(`loss is ${loss} at step ${step}: lower optim.lr or check the data`);
  }
  const nameToKey = new Map(ctx.variables.map((v, i) => [v.name, ctx.keys[i]!]));
  for (const [name, t] of Object.entries(g)) {
    grads.set(nameToKey.get(name)!, weight === 1 ? t : t.mul(weight));
    if (weight !== 1) t.dispose();
  }
  tf.dispose([x, y, value]);
  return { loss: loss * weight, grads };
}

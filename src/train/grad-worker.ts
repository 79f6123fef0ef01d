/** A gradient worker thread (see parallel.ts): a model replica computing the gradient of one batch slice. */
import { parentPort, workerData } from 'node:worker_threads';
import { copyTensorInto, ready, tf } from '../engine/index.ts';
import type { Sample } from '../patching/augment.ts';
import type { TrainConfig } from './config.ts';
import { buildLoss } from './loss.ts';
import type { Slot } from './parallel.ts';
import { type ShardContext, shardContextKeys, shardGradients } from './step.ts';
import { buildModel } from './trainer.ts';

const { cfg, samples, keys, slots, weightsSab, gradSab, backend } = workerData as {
  cfg: TrainConfig;
  samples: Sample[];
  keys: string[];
  slots: Slot[];
  weightsSab: SharedArrayBuffer;
  gradSab: SharedArrayBuffer;
  backend: string;
};
const weights = new Float32Array(weightsSab);
const grads = new Float32Array(gradSab);
const port = parentPort!;

async function init(): Promise<ShardContext> {
  await ready(backend);
  const model = await buildModel({ ...cfg, model: { ...cfg.model, encoder: undefined } }, () => {});
  const { keys: ownKeys, variables } = shardContextKeys(model);
  if (ownKeys.join() !== keys.join()) throw new Error('worker model parameters differ from the main thread');
  return {
    model,
    samples,
    cfg,
    loss: buildLoss(cfg.loss, cfg.model.numLabels, cfg.data.ignoreIndex),
    keys,
    variables,
  };
}

const ctxPromise = init();
ctxPromise.then(
  () => port.postMessage({ type: 'ready' }),
  (e: Error) => port.postMessage({ type: 'error', message: e.message }),
);

type StepMessage = { type: 'step'; step: number; k: number; shard: number; shards: number; batch?: Sample[] };

port.on('message', async (m: StepMessage) => {
  try {
    const ctx = await ctxPromise;
    ctx.variables.forEach((v, i) => {
      const s = slots[i]!;
      // assign() shares the new tensor's storage and takes a reference: the temporary must still be disposed.
      const t = tf.tensor(weights.subarray(s.offset, s.offset + s.size), s.shape);
      v.assign(t);
      t.dispose();
    });
    const { loss, grads: g } = shardGradients(ctx, m.step, m.k, m.shard, m.shards, m.batch);
    for (const s of slots) {
      const t = g.get(s.key);
      if (t) copyTensorInto(t, grads, s.offset);
      else grads.fill(0, s.offset, s.offset + s.size);
    }
    for (const t of g.values()) t.dispose();
    port.postMessage({ type: 'done', loss });
  } catch (e) {
    port.postMessage({ type: 'error', message: (e as Error).message });
  }
});

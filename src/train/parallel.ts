/**
 * Data-parallel gradients on worker threads. The TF.js wasm backend computes on one core, so each extra core
 * gets a worker thread with its own engine and model replica. Every micro-batch, the main thread publishes
 * the current trainable weights in shared memory, each worker computes the gradient of its slice of the
 * batch into its own shared buffer, and the main thread sums the slices. BatchNorm statistics are per slice
 * (as PyTorch DDP without SyncBatchNorm); running statistics are the main thread's.
 */

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { siblingModule, workerSource } from '../core/modules.ts';
import { copyTensorInto, tf } from '../engine/index.ts';
import type { Sample } from '../patching/augment.ts';
import type { TrainConfig } from './config.ts';

export interface Slot {
  key: string;
  shape: number[];
  offset: number;
  size: number;
}

export function layoutOf(keys: string[], variables: tf.Variable[]): { slots: Slot[]; total: number } {
  let offset = 0;
  const slots = keys.map((key, i) => {
    const v = variables[i]!;
    const slot = { key, shape: v.shape, offset, size: v.size };
    offset += v.size;
    return slot;
  });
  return { slots, total: offset };
}

/** Number of gradient threads for `workers: 'auto'`: one per core. */
export function autoWorkers(): number {
  return Math.max(1, availableParallelism());
}

type Reply = { type: 'ready' } | { type: 'done'; loss: number } | { type: 'error'; message: string };

export class GradientWorkers {
  private readonly weights: Float32Array;
  private readonly grads: Float32Array[];
  private pending = new Map<Worker, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();

  private constructor(
    private readonly workers: Worker[],
    private readonly slots: Slot[],
    total: number,
    weightsSab: SharedArrayBuffer,
    gradSabs: SharedArrayBuffer[],
  ) {
    this.weights = new Float32Array(weightsSab);
    this.grads = gradSabs.map((s) => new Float32Array(s));
    void total;
    for (const w of workers) {
      w.on('message', (m: Reply) => {
        const p = this.pending.get(w);
        if (!p) return;
        this.pending.delete(w);
        if (m.type === 'error') p.reject(new Error(`gradient worker: ${m.message}`));
        else p.resolve(m);
      });
      w.on('error', (e) => {
        const p = this.pending.get(w);
        this.pending.delete(w);
        p?.reject(new Error(`gradient worker crashed: ${e.message}`));
      });
      w.on('exit', (code) => {
        const p = this.pending.get(w);
        this.pending.delete(w);
        p?.reject(new Error(`gradient worker exited with code ${code}`));
      });
    }
  }

  /** Starts `count` workers, each with a copy of the training samples and the model of `cfg`. */
  static async start(
    count: number,
    cfg: TrainConfig,
    samples: Sample[],
    keys: string[],
    variables: tf.Variable[],
    backend: string,
  ): Promise<GradientWorkers> {
    const { slots, total } = layoutOf(keys, variables);
    const weightsSab = new SharedArrayBuffer(total * 4);
    const gradSabs = Array.from({ length: count }, () => new SharedArrayBuffer(total * 4));
    const entry = workerSource(siblingModule(import.meta.url, 'grad-worker'));
    const workers = gradSabs.map(
      (gradSab) =>
        new Worker(entry.source, {
          eval: entry.eval,
          workerData: { cfg, samples, keys, slots, weightsSab, gradSab, backend },
        }),
    );
    const pool = new GradientWorkers(workers, slots, total, weightsSab, gradSabs);
    try {
      await Promise.all(workers.map((w) => pool.request(w, null)));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  private request(w: Worker, message: unknown): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.pending.set(w, { resolve, reject });
      if (message != null) w.postMessage(message);
    });
  }

  /** Copies the current trainable weights into shared memory for the workers. */
  publish(variables: tf.Variable[]): void {
    variables.forEach((v, i) => {
      copyTensorInto(v, this.weights, this.slots[i]!.offset);
    });
  }

  /**
   * Starts shards 1..size of (step, k) on the workers; resolves to their losses. Call `collect` afterwards.
   * `batch`: the micro-batch's patches when they are read online (each worker gets a copy).
   */
  run(step: number, k: number, shards: number, batch?: Sample[]): Promise<number[]> {
    return Promise.all(
      this.workers.map((w, i) =>
        this.request(w, { type: 'step', step, k, shard: i + 1, shards, batch }).then((r) =>
          r.type === 'done' ? r.loss : 0,
        ),
      ),
    );
  }

  /** Adds the workers' gradients into `grads` (keyed by Hugging Face name). */
  collect(grads: Map<string, tf.Tensor>): void {
    for (const slot of this.slots) {
      let sum: Float32Array;
      if (this.grads.length === 1) {
        // One worker: its slice goes into a tensor as it is (one copy), added by the engine's kernel below.
        sum = this.grads[0]!.subarray(slot.offset, slot.offset + slot.size);
      } else {
        sum = new Float32Array(slot.size);
        for (const g of this.grads) {
          const part = g.subarray(slot.offset, slot.offset + slot.size);
          for (let i = 0; i < slot.size; i++) sum[i] += part[i]!;
        }
      }
      const extra = tf.tensor(sum, slot.shape);
      const prev = grads.get(slot.key);
      if (prev) {
        grads.set(slot.key, prev.add(extra));
        prev.dispose();
        extra.dispose();
      } else grads.set(slot.key, extra);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * An ONNX Runtime session on its own worker thread (model-worker.ts), so that the main thread keeps reading,
 * normalising, blending and writing while a batch runs (onnxruntime-node blocks the thread that runs a session).
 * Input buffers are moved to the worker, not copied, and handed back with the logits.
 */
import { Worker } from 'node:worker_threads';
import { siblingModule, workerSource } from '../core/modules.ts';
import type { ModelRunRequest, ModelWorkerData, ModelWorkerReply } from './model-worker.ts';

export interface ModelThreadOutput {
  /** NCHW float32 logits. */
  data: Float32Array;
  dims: [number, number, number, number];
  /** The input's memory, back from the worker (the array passed in is detached when it was moved). */
  input: Float32Array;
}

interface Pending {
  resolve: (r: ModelThreadOutput) => void;
  reject: (e: Error) => void;
  /** The caller's array when it was copied to the worker, not moved. */
  kept: Float32Array | null;
}

export class ModelThread {
  readonly #worker: Worker;
  readonly #source: string;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #failure: Error | undefined;
  readonly #exited: Promise<void>;

  private constructor(worker: Worker, source: string) {
    this.#worker = worker;
    this.#source = source;
    this.#exited = new Promise((resolve) => worker.once('exit', () => resolve()));
  }

  /** Starts the worker and loads `path` there; rejects with the session's load error. */
  static async start(path: string, o: { threads?: number; spinning: boolean }): Promise<ModelThread> {
    const entry = workerSource(siblingModule(import.meta.url, 'model-worker'));
    const worker = new Worker(entry.source, {
      eval: entry.eval,
      workerData: { path, threads: o.threads, spinning: o.spinning } satisfies ModelWorkerData,
    });
    const thread = new ModelThread(worker, path);
    const loaded = new Promise<void>((resolve, reject) => {
      thread.#pending.set(0, { resolve: () => resolve(), reject, kept: null });
    });
    worker.on('message', (m: ModelWorkerReply) => thread.#reply(m));
    worker.on('error', (e) => thread.#fail(new Error(`${path}: model worker failed (${e.message})`)));
    worker.on('exit', (code) => thread.#fail(new Error(`${path}: model worker exited (code ${code})`)));
    try {
      await loaded;
    } catch (e) {
      await worker.terminate();
      throw e;
    }
    return thread;
  }

  /**
   * Runs the model on `pixels` (NCHW). When `pixels` spans its whole buffer, the buffer is moved to the worker:
   * `pixels` is unusable until the run settles, and its memory comes back as `input`.
   */
  run(pixels: Float32Array, dims: [number, number, number, number]): Promise<ModelThreadOutput> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const whole = pixels.byteOffset === 0 && pixels.byteLength === pixels.buffer.byteLength;
    const movable = whole && pixels.buffer instanceof ArrayBuffer;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, kept: movable ? null : pixels });
      const request: ModelRunRequest = { id, pixels, dims };
      this.#worker.postMessage(request, movable ? [pixels.buffer as ArrayBuffer] : []);
    });
  }

  async release(): Promise<void> {
    this.#failure ??= new Error(`${this.#source}: model released`);
    this.#worker.postMessage('release');
    await this.#exited;
  }

  #reply(m: ModelWorkerReply): void {
    const p = this.#pending.get(m.id);
    if (!p) return;
    this.#pending.delete(m.id);
    if ('error' in m) p.reject(new Error(m.error));
    else p.resolve({ data: m.data, dims: m.dims, input: p.kept ?? m.pixels });
  }

  #fail(e: Error): void {
    this.#failure ??= e;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }
}

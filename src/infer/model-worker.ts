/**
 * Worker thread holding an ONNX Runtime session for whole-slide inference. onnxruntime-node runs a session
 * synchronously on the thread that calls it, so on the main thread every batch would stop reading, normalising,
 * blending and writing for its whole duration; here the model runs beside them. Protocol: see `WorkerTileModel`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OnnxSegmenter } from '../onnx/runtime.ts';

export interface ModelWorkerData {
  path: string;
  threads?: number;
  spinning: boolean;
}

/** A run: the pixels (shared memory, or a copy) and their NCHW dims. */
export interface ModelRunRequest {
  id: number;
  pixels: Float32Array;
  dims: [number, number, number, number];
}

/** The logits, and the request's pixels moved back (their memory is the caller's input buffer). */
export type ModelWorkerReply =
  | { id: number; data: Float32Array; dims: [number, number, number, number]; pixels: Float32Array }
  | { id: number; error: string; pixels?: Float32Array };

const port = parentPort!;
const { path, threads, spinning } = workerData as ModelWorkerData;
OnnxSegmenter.load(path, { intraOpThreads: threads, spinning }).then(
  (session) => {
    // Requests are handled strictly one after the other: the next batch may be queued while one runs, and a
    // release that comes in behind a run waits for it.
    let queue = Promise.resolve();
    const handle = async (m: ModelRunRequest | 'release'): Promise<void> => {
      if (m === 'release') {
        try {
          await session.release();
        } finally {
          port.close();
        }
        return;
      }
      const back = [m.pixels.buffer as ArrayBuffer];
      try {
        const out = await session.run(m.pixels, m.dims);
        // A copy the worker owns outright, moved (not cloned) to the main thread.
        const data = Float32Array.from(out.data);
        const reply: ModelWorkerReply = { id: m.id, data, dims: out.dims, pixels: m.pixels };
        port.postMessage(reply, [data.buffer, ...back]);
      } catch (e) {
        port.postMessage(
          { id: m.id, error: (e as Error).message, pixels: m.pixels } satisfies ModelWorkerReply,
          back,
        );
      }
    };
    port.on('message', (m: ModelRunRequest | 'release') => {
      // handle() reports a failed run to the caller; a failed release only closes the port early.
      queue = queue.then(() => handle(m)).catch(() => {});
    });
    const ready: ModelWorkerReply = {
      id: 0,
      data: new Float32Array(0),
      dims: [0, 0, 0, 0],
      pixels: new Float32Array(0),
    };
    port.postMessage(ready);
  },
  (e: unknown) => port.postMessage({ id: 0, error: (e as Error).message } satisfies ModelWorkerReply),
);

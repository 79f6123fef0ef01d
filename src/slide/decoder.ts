/**
 * Where blocks are decoded: in this thread, or in a piscina pool of worker threads so that CPU-bound codecs
 * (JPEG 2000 WASM, LZW, deflate) run in parallel. JPEG through libturbojpeg never goes to the pool: it already
 * spreads concurrent decodes over libuv's threads (codecs/jpeg-turbo.ts), and a worker round trip (message,
 * transfer) would cost more than the decode of a tile.
 */

import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { siblingModule, workerProcessArgv } from '../core/modules.ts';
import { type BlockJob, decodeBlock } from './codecs/decode.ts';
import { turboJpegAvailable } from './codecs/jpeg-turbo.ts';
import { Compression } from './tiff/tags.ts';

export interface BlockDecoder {
  decode(job: BlockJob): Promise<Uint8Array>;
  close(): Promise<void>;
}

export const inThreadDecoder: BlockDecoder = {
  decode: decodeBlock,
  async close() {},
};

export class PoolDecoder implements BlockDecoder {
  private readonly pool: Piscina;

  constructor(threads: number) {
    const entry = siblingModule(import.meta.url, 'decode-worker');
    this.pool = new Piscina({
      filename: entry.href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 60_000,
      execArgv: workerProcessArgv(entry),
    });
  }

  async decode(job: BlockJob): Promise<Uint8Array> {
    if (job.format.compression === Compression.JPEG && turboJpegAvailable()) return decodeBlock(job);
    return (await this.pool.run(job)) as Uint8Array;
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}

/** `workers`: 0 decodes in this thread; n > 0 uses n pool threads; 'auto' uses cores - 1 (at least 1). */
export function createDecoder(workers: number | 'auto' = 0): BlockDecoder {
  const n = workers === 'auto' ? Math.max(1, availableParallelism() - 1) : workers;
  return n > 0 ? new PoolDecoder(n) : inThreadDecoder;
}

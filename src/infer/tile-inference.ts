/**
 * The inference stage of a whole-slide run: stripe by stripe, the tiles still to compute are read ahead
 * (PrefetchingTileSource), batched through the model (TileBatchRunner), blended into bands (StripeAccumulator),
 * and each finished label chunk is handed to the output writer. The next batch reads and runs while the previous
 * one is blended, and chunk writes run in the background, never more than a stripe row of them queued.
 */
import { type BandGeometry, BandPool, type ChunkSink, StripeAccumulator } from './band-accumulator.ts';
import type { TileProgress } from './infer-progress.ts';
import { InferAbortedError, type InferSlideOptions } from './slide-infer-options.ts';
import type { TileBatchRunner } from './tile-batches.ts';
import { type ChunkDone, pendingTiles, type Stripe, type TileGrid, type TilePlan } from './tile-plan.ts';
import { type GridTileReader, PrefetchingTileSource } from './tile-source.ts';

/** Where finished chunks go and which are on disk already (the zarr output). */
export interface ChunkWriter {
  chunkDone: ChunkDone;
  chunk(cx: number, cy: number, labels: Uint8Array, cw: number, ch: number): Promise<void>[];
}

export interface TileInference {
  /** Shown in the abort error. */
  slidePath: string;
  grid: TileGrid;
  plan: TilePlan;
  blend: BandGeometry;
  read: GridTileReader;
  batches: TileBatchRunner;
  batch: number;
  prefetch: number;
  writer: ChunkWriter;
  progress: TileProgress;
  /** Level-0 pixels per grid pixel (for `onTile`). */
  downsample: number;
  signal?: AbortSignal;
  onTile?: InferSlideOptions['onTile'];
}

/** Runs every stripe of the plan; throws InferAbortedError (after the queued writes land) when `signal` aborts. */
export async function inferTiles(job: TileInference): Promise<void> {
  const pool = new BandPool(job.blend.classes);
  for (const stripe of job.plan.stripes) await inferStripe(job, stripe, pool);
  job.progress.report(true);
}

/** Chunk writes in flight. */
class WriteQueue {
  readonly #pending = new Set<Promise<void>>();

  get size(): number {
    return this.#pending.size;
  }

  add(p: Promise<void>): void {
    this.#pending.add(p);
    p.then(
      () => this.#pending.delete(p),
      () => {},
    );
  }

  /** Waits for one write to settle (rejects if it failed). */
  async one(): Promise<void> {
    await Promise.race(this.#pending);
  }

  async all(): Promise<void> {
    await Promise.all(this.#pending);
  }
}

async function inferStripe(job: TileInference, stripe: Stripe, pool: BandPool): Promise<void> {
  const { writer, progress, batch, batches } = job;
  const chunkDone: ChunkDone = (cx, cy) => writer.chunkDone(cx, cy);
  // Tiles whose every chunk (in this stripe) is on disk already are not run again.
  const { jobs, skipped } = pendingTiles(stripe, job.grid, chunkDone);
  progress.skipped(skipped);
  const bands = new StripeAccumulator(job.blend, stripe, pool);
  const writes = new WriteQueue();
  const sink: ChunkSink = (cx, cy, labels, cw, ch) => {
    progress.chunksWritten++;
    for (const w of writer.chunk(cx, cy, labels, cw, ch)) writes.add(w);
  };
  const source = new PrefetchingTileSource(jobs, job.read, job.grid.tile, job.prefetch);
  source.topUp();
  let inflight = jobs.length > 0 ? batches.run(jobs.slice(0, batch), source) : null;
  for (let start = 0; inflight; start += batch) {
    const done = await inflight;
    if (job.signal?.aborted) {
      await writes.all();
      throw new InferAbortedError(`${job.slidePath}: inference aborted`);
    }
    const nextStart = start + batch;
    inflight = nextStart < jobs.length ? batches.run(jobs.slice(nextStart, nextStart + batch), source) : null;
    for (let b = 0; b < done.tiles.length; b++) {
      const t = done.tiles[b]!;
      bands.add(t, batches.probabilities(done, b));
      job.onTile?.({
        x: t.x,
        y: t.y,
        level0X: Math.round(t.x * job.downsample),
        level0Y: Math.round(t.y * job.downsample),
        level0Size: job.grid.tile * job.downsample,
      });
      progress.tileComputed(t.x < stripe.x0);
    }
    const next = inflight ? jobs[nextStart] : undefined;
    bands.flush(next ? next.y : Number.POSITIVE_INFINITY, chunkDone, sink);
    progress.report();
    // Writing is asynchronous, but bounded: never more than a stripe row of chunks queued.
    if (writes.size > 2 * job.grid.stripeChunks) await writes.one();
  }
  bands.flush(Number.POSITIVE_INFINITY, chunkDone, sink);
  await writes.all();
}

/**
 * The inference stage of a whole-slide run: stripe by stripe, the tiles still to compute are read ahead
 * (PrefetchingTileSource), batched through the model (TileBatchRunner), blended into bands (StripeAccumulator),
 * and each finished label chunk is handed to the output writer. The model runs on its own thread (tile-runner):
 * while it runs a batch, the next one is read and normalised and the previous one blended; chunk writes run in the
 * background, never more than a stripe row of them queued.
 */
import { type BandGeometry, BandPool, type ChunkSink, StripeAccumulator } from './band-accumulator.ts';
import type { TileProgress } from './infer-progress.ts';
import { InferAbortedError, type InferSlideOptions } from './slide-infer-options.ts';
import type { Stage, StageClock } from './stage-clock.ts';
import type { PreparedBatch, TileBatch, TileBatchRunner } from './tile-batches.ts';
import { type ChunkDone, pendingTiles, type Stripe, type TileGrid, type TilePlan } from './tile-plan.ts';
import { type GridTileReader, PrefetchingTileSource } from './tile-source.ts';

/** Where finished chunks go and which are on disk already (the zarr output). */
export interface ChunkWriter {
  chunkDone: ChunkDone;
  /** `image`: the chunk's image pixels when the tiles hold them (see `TileInference.paintImage`). */
  chunk(
    cx: number,
    cy: number,
    labels: Uint8Array,
    cw: number,
    ch: number,
    image?: Uint8Array,
  ): Promise<void>[];
}

export interface TileInference {
  /** Shown in the abort error. */
  slidePath: string;
  grid: TileGrid;
  plan: TilePlan;
  blend: BandGeometry;
  read: GridTileReader;
  /**
   * Keep the tiles' pixels for the image chunks (they are the slide's own pixels on the grid), so that the image
   * writer need not read and convert them again.
   */
  paintImage: boolean;
  batches: TileBatchRunner;
  batch: number;
  prefetch: number;
  writer: ChunkWriter;
  progress: TileProgress;
  /** Level-0 pixels per grid pixel (for `onTile`). */
  downsample: number;
  signal?: AbortSignal;
  onTile?: InferSlideOptions['onTile'];
  clock?: StageClock;
}

/** Runs every stripe of the plan; throws InferAbortedError (after the queued writes land) when `signal` aborts. */
export async function inferTiles(job: TileInference): Promise<void> {
  const pool = new BandPool(job.blend.classes, job.paintImage);
  for (const stripe of job.plan.stripes) await inferStripe(job, stripe, pool);
  job.progress.report(true);
}

/** Awaits `p`, counting the wait against `stage` when there is a clock. */
function wait<T>(clock: StageClock | undefined, stage: Stage, p: Promise<T>): Promise<T> {
  return clock ? clock.wait(stage, p) : p;
}

/**
 * `p`, marked as handled: it is awaited later, and a failure before then must surface there, not as an unhandled
 * rejection.
 */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** A batch on its way: read and normalised, then through the model. */
interface BatchInFlight {
  prepared: Promise<PreparedBatch>;
  result: Promise<TileBatch>;
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
  const { writer, progress, batch, batches, clock } = job;
  const chunkDone: ChunkDone = (cx, cy) => writer.chunkDone(cx, cy);
  // Tiles whose every chunk (in this stripe) is on disk already are not run again.
  const { jobs, skipped } = pendingTiles(stripe, job.grid, chunkDone);
  progress.skipped(skipped);
  const bands = new StripeAccumulator(job.blend, stripe, pool, clock);
  const writes = new WriteQueue();
  const sink: ChunkSink = (cx, cy, labels, cw, ch, image) => {
    progress.chunksWritten++;
    const t0 = performance.now();
    for (const w of writer.chunk(cx, cy, labels, cw, ch, image))
      writes.add(clock ? clock.latency('write', w) : w);
    clock?.add('write', performance.now() - t0);
  };
  // Tiles paint the image as their reads land (main-thread time of the image output, counted as writing).
  const read: GridTileReader = job.paintImage
    ? async (ox, oy, tile) => {
        const img = await job.read(ox, oy, tile);
        const t0 = performance.now();
        bands.paint({ x: ox, y: oy }, img);
        clock?.add('write', performance.now() - t0);
        return img;
      }
    : job.read;
  const source = new PrefetchingTileSource(jobs, read, job.grid.tile, job.prefetch);
  source.topUp();
  const slice = (start: number) => jobs.slice(start, start + batch);
  // Batch k + 1 is read and normalised while batch k is in the model, and handed to the model's thread as soon as
  // it is ready: it waits there behind batch k, so the model starts it the moment batch k ends, whatever this
  // thread is doing then. Batch k is blended while batch k + 1 runs. Two input buffers: batch k + 2 is read into
  // batch k's once it is back; batches are prepared one after the other (tiles come from the source in order).
  const launch = (start: number, after?: Promise<unknown>): BatchInFlight | null => {
    if (start >= jobs.length) return null;
    const prepared = quiet(
      after ? after.then(() => batches.prepare(slice(start), source)) : batches.prepare(slice(start), source),
    );
    return { prepared, result: quiet(prepared.then((p) => batches.infer(p))) };
  };
  let current = launch(0);
  let following = current && launch(batch, current.prepared);
  for (let start = 0; current; start += batch) {
    await wait(clock, 'read/decode', current.prepared);
    const done = await wait(clock, 'model', current.result);
    if (job.signal?.aborted) {
      // The batch handed to the model already is let finish, so that no run is left behind on its thread.
      await following?.result.catch(() => {});
      await writes.all();
      throw new InferAbortedError(`${job.slidePath}: inference aborted`);
    }
    current = following;
    following = current && launch(start + 2 * batch, current.prepared);
    for (let b = 0; b < done.tiles.length; b++) {
      const t = done.tiles[b]!;
      batches.blend(done, b, bands);
      job.onTile?.({
        x: t.x,
        y: t.y,
        level0X: Math.round(t.x * job.downsample),
        level0Y: Math.round(t.y * job.downsample),
        level0Size: job.grid.tile * job.downsample,
      });
      progress.tileComputed(t.x < stripe.x0);
    }
    const next = current ? jobs[start + batch] : undefined;
    bands.flush(next ? next.y : Number.POSITIVE_INFINITY, chunkDone, sink);
    progress.report();
    // Writing is asynchronous, but bounded: never more than a stripe row of chunks queued.
    if (writes.size > 2 * job.grid.stripeChunks) await wait(clock, 'write', writes.one());
  }
  bands.flush(Number.POSITIVE_INFINITY, chunkDone, sink);
  await writes.all();
}

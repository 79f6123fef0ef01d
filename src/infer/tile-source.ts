/**
 * Tiles of the output grid read from the slide: a level-0 window scaled to tile × tile pixels at the target
 * resolution, read ahead of the model (a bounded number in flight, decoding in the slide's worker pool).
 */
import sharp from 'sharp';
import { openSlide } from '../slide/index.ts';
import type { RGBAImage, Slide } from '../slide/types.ts';
import type { StageClock } from './stage-clock.ts';
import type { TileOrigin } from './tile-plan.ts';

/** Reads the tile × tile output-grid tile at (ox, oy). */
export type GridTileReader = (ox: number, oy: number, tile: number) => Promise<RGBAImage>;

/**
 * `ds` is level-0 pixels per output pixel; `useSlideMpp` lets the slide resample to `mpp` itself (its own mpp is
 * trusted), otherwise the best level is read and resized here.
 */
export function gridTileReader(
  slide: Slide,
  ds: number,
  mpp: number,
  useSlideMpp: boolean,
  clock?: StageClock,
): GridTileReader {
  const timed = <T>(stage: 'read/decode' | 'resample', p: Promise<T>) =>
    clock ? clock.latency(stage, p) : p;
  return async (ox, oy, tile) => {
    const x = Math.round(ox * ds);
    const y = Math.round(oy * ds);
    if (Math.abs(ds - 1) < 1e-9)
      return timed('read/decode', slide.readRegion({ x, y, level: 0, width: tile, height: tile }));
    // The slide resamples itself here (its time counts as reading).
    if (useSlideMpp)
      return timed('read/decode', slide.readRegionAtMpp({ x, y, mpp, width: tile, height: tile }));
    const level = slide.getBestLevelForDownsample(ds);
    const lds = slide.levels[level]!.downsample;
    const size = Math.ceil((tile * ds) / lds);
    const region = await timed('read/decode', slide.readRegion({ x, y, level, width: size, height: size }));
    const data = await timed(
      'resample',
      sharp(region.data, { raw: { width: size, height: size, channels: 4 } })
        .resize({ width: tile, height: tile, fit: 'fill', kernel: 'linear' })
        .raw()
        .toBuffer(),
    );
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: tile, height: tile };
  };
}

/**
 * True when every tile `gridTileReader` reads is the slide's own pixels on the grid, so that two overlapping tiles
 * agree and a tile's pixels equal what the image writer reads for the same grid pixels (omezarr-image-writer's
 * `readScaled`): the grid is level 0 (ds 1), or, when the slide resamples by its own mpp, a level whose downsample
 * is exactly the grid's integer downsample (pixel-aligned reads, no resampling, no sub-pixel shift).
 */
export function tilesAreSlidePixels(slide: Slide, ds: number, useSlideMpp: boolean): boolean {
  if (Math.abs(ds - 1) < 1e-9) return true;
  if (!useSlideMpp || !slide.mpp || slide.mpp.x !== slide.mpp.y || !Number.isInteger(ds)) return false;
  return slide.levels[slide.getBestLevelForDownsample(ds)]!.downsample === ds;
}

/**
 * Default decoded-block cache budget: the source pixels (RGBA) of one row of tiles across a stripe at the level the
 * tiles are read from, plus two 512-px blocks of slack each way, clamped to [8, 64] MiB. Reads the slide's header
 * only (no decode workers).
 */
export async function readCacheBudget(
  slidePath: string,
  g: { mpp: number; slideMpp?: number; tile: number; stripe: number },
): Promise<number> {
  const probe = await openSlide(slidePath, { cacheBytes: 0 });
  try {
    const slideMpp = g.slideMpp ?? probe.mpp?.x ?? g.mpp;
    const ds = g.mpp / slideMpp;
    const level = probe.getBestLevelForDownsample(ds);
    const perOutput = Math.max(1, ds / probe.levels[level]!.downsample);
    const gridWidth = probe.levels[0]!.width / ds;
    const w = (Math.min(g.stripe, gridWidth) + g.tile) * perOutput + 1024;
    const h = g.tile * perOutput + 1024;
    return Math.min(64 * 2 ** 20, Math.max(8 * 2 ** 20, Math.ceil(4 * w * h)));
  } finally {
    await probe.close();
  }
}

/** The tiles of a job list in order, with reads for up to `depth` of them in flight while the model runs. */
export class PrefetchingTileSource {
  readonly #jobs: readonly TileOrigin[];
  readonly #read: GridTileReader;
  readonly #tile: number;
  readonly #depth: number;
  readonly #reads: Promise<RGBAImage>[] = [];
  #issued = 0;

  constructor(jobs: readonly TileOrigin[], read: GridTileReader, tile: number, depth: number) {
    this.#jobs = jobs;
    this.#read = read;
    this.#tile = tile;
    this.#depth = depth;
  }

  /** Starts reads until `depth` are in flight (or every job is issued). */
  topUp(): void {
    while (this.#issued < this.#jobs.length && this.#reads.length < this.#depth) {
      const t = this.#jobs[this.#issued++]!;
      const p = this.#read(t.x, t.y, this.#tile);
      // Awaited in order by next(); a failure surfaces there, not as an unhandled rejection.
      p.catch(() => {});
      this.#reads.push(p);
    }
  }

  /** The pixels of the next job (in job order). */
  next(): Promise<RGBAImage> {
    this.topUp();
    const p = this.#reads.shift();
    if (!p) throw new Error('tile source: no tiles left');
    return p;
  }
}

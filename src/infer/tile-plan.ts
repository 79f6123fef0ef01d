/**
 * Which tiles a whole-slide run computes, and in what order: the overlapping tile grid over the output grid, kept
 * where the tissue mask has tissue, cut into vertical stripes of whole label chunks (a tile straddling a stripe
 * border belongs to both), each stripe's tiles row by row. On resume, tiles whose every chunk is on disk are dropped.
 */

import { tileOrigins } from '../core/sliding.ts';
import { detectTissue } from '../patching/tissue.ts';
import type { Slide } from '../slide/types.ts';

/** Top-left corner of a tile in output-grid pixels. */
export interface TileOrigin {
  x: number;
  y: number;
}

/** Columns [x0, x1) of the output grid (label chunks [c0, c1)) and the tiles that reach into them. */
export interface Stripe {
  x0: number;
  x1: number;
  c0: number;
  c1: number;
  tiles: TileOrigin[];
}

export interface TileGrid {
  /** Output grid size in pixels. */
  width: number;
  height: number;
  tile: number;
  overlap: number;
  chunkSize: number;
  /** Label chunks per stripe. */
  stripeChunks: number;
}

export interface TilePlan {
  cols: number;
  rows: number;
  /** Tiles of the full grid, and of those the ones with tissue. */
  gridTiles: number;
  tissueTiles: number;
  stripes: Stripe[];
  /** Work estimate for progress: every tissue tile of every stripe it touches. */
  tilesTotal: number;
}

/** The output grid over a slide: level 0 resampled to `mpp` µm per pixel. */
export interface OutputGrid {
  /** Level-0 µm per pixel (the slide's own, or the one given). */
  slideMpp: number;
  /** Level-0 size. */
  slideWidth: number;
  slideHeight: number;
  /** Level-0 pixels per grid pixel. */
  downsample: number;
  width: number;
  height: number;
}

export function outputGrid(slidePath: string, slide: Slide, mpp: number, slideMpp?: number): OutputGrid {
  const mpp0 = slideMpp ?? slide.mpp?.x;
  if (!mpp0) throw new Error(`${slidePath}: the slide does not state its resolution (mpp); pass --slide-mpp`);
  const slideWidth = slide.levels[0]!.width;
  const slideHeight = slide.levels[0]!.height;
  const downsample = mpp / mpp0;
  return {
    slideMpp: mpp0,
    slideWidth,
    slideHeight,
    downsample,
    width: Math.max(1, Math.round(slideWidth / downsample)),
    height: Math.max(1, Math.round(slideHeight / downsample)),
  };
}

/** True when the tile at (x, y) is to be run. */
export type TileFilter = (x: number, y: number) => boolean;

export function planTiles(g: TileGrid, keep: TileFilter): TilePlan {
  const cs = g.chunkSize;
  const stride = g.tile - g.overlap;
  const xs = tileOrigins(g.width, g.tile, stride);
  const ys = tileOrigins(g.height, g.tile, stride);
  const kept: TileOrigin[] = [];
  for (const y of ys) for (const x of xs) if (keep(x, y)) kept.push({ x, y });
  const cols = Math.ceil(g.width / cs);
  const rows = Math.ceil(g.height / cs);
  const stripes: Stripe[] = [];
  for (let c0 = 0; c0 < cols; c0 += g.stripeChunks) {
    const x0 = c0 * cs;
    const x1 = Math.min(g.width, (c0 + g.stripeChunks) * cs);
    const tiles = kept.filter((t) => t.x + g.tile > x0 && t.x < x1);
    stripes.push({ x0, x1, c0, c1: Math.ceil(x1 / cs), tiles });
  }
  return {
    cols,
    rows,
    gridTiles: xs.length * ys.length,
    tissueTiles: kept.length,
    stripes,
    tilesTotal: stripes.reduce((a, s) => a + s.tiles.length, 0),
  };
}

/** Summed-area table of a 0/1 mask, for "any tissue in this rectangle" queries. */
function integral(mask: Uint8Array, w: number, h: number): Int32Array {
  const s = new Int32Array((w + 1) * (h + 1));
  for (let y = 0; y < h; y++) {
    let row = 0;
    for (let x = 0; x < w; x++) {
      row += mask[y * w + x]! ? 1 : 0;
      s[(y + 1) * (w + 1) + x + 1] = s[y * (w + 1) + x + 1]! + row;
    }
  }
  return s;
}

/** Tiles (of `tile` pixels on a `width` × `height` output grid) that overlap any tissue of the slide's mask. */
export async function tissueFilter(
  slide: Slide,
  width: number,
  height: number,
  tile: number,
): Promise<TileFilter> {
  const tissue = await detectTissue(slide);
  const sat = integral(tissue.mask, tissue.width, tissue.height);
  const fx = tissue.width / width;
  const fy = tissue.height / height;
  const tw = tissue.width + 1;
  return (x, y) => {
    const x0 = Math.max(0, Math.floor(x * fx));
    const y0 = Math.max(0, Math.floor(y * fy));
    const x1 = Math.min(tissue.width, Math.ceil((x + tile) * fx));
    const y1 = Math.min(tissue.height, Math.ceil((y + tile) * fy));
    if (x1 <= x0 || y1 <= y0) return false;
    return sat[y1 * tw + x1]! - sat[y0 * tw + x1]! - sat[y1 * tw + x0]! + sat[y0 * tw + x0]! > 0;
  };
}

/** True when label chunk (cx, cy) is on disk already (resume). */
export type ChunkDone = (cx: number, cy: number) => boolean;

/** The stripe's tiles still to run: those with a chunk (in this stripe) not yet on disk; `skipped` counts the rest. */
export function pendingTiles(
  stripe: Stripe,
  g: Pick<TileGrid, 'height' | 'tile' | 'chunkSize'>,
  chunkDone: ChunkDone,
): { jobs: TileOrigin[]; skipped: number } {
  const cs = g.chunkSize;
  const jobs: TileOrigin[] = [];
  let skipped = 0;
  for (const t of stripe.tiles) {
    let done = true;
    for (
      let r = Math.floor(t.y / cs);
      r <= Math.floor((Math.min(g.height, t.y + g.tile) - 1) / cs) && done;
      r++
    ) {
      for (
        let cx = Math.max(stripe.c0, Math.floor(t.x / cs));
        cx <= Math.min(stripe.c1 - 1, Math.floor((t.x + g.tile - 1) / cs));
        cx++
      ) {
        if (!chunkDone(cx, r)) {
          done = false;
          break;
        }
      }
    }
    if (done) skipped++;
    else jobs.push(t);
  }
  return { jobs, skipped };
}

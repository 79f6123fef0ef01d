/**
 * Blending of tile probabilities over one stripe of the output grid, in bands one label chunk high: every tile adds
 * its probabilities × the blending window into the bands it covers; a band no later tile can reach is argmaxed into
 * label chunks (class index + 1; 0 where no tile reached) and released. Only the bands pending tiles still touch
 * hold accumulators, so memory depends on the stripe width and the tile size, not on the slide.
 */
import { argmaxAt } from '../core/sliding.ts';
import type { ChunkDone, Stripe, TileOrigin } from './tile-plan.ts';

/** Weighted class-probability sums (pixels × C) and weight sums (pixels) of one band of a stripe. */
export interface Band {
  acc: Float32Array;
  wsum: Float32Array;
}

/**
 * Released bands, zeroed and reused: the steady state allocates (almost) nothing per tile, so the garbage — and the
 * heap the collector lets grow — does not scale with the number of tiles.
 */
export class BandPool {
  readonly #free: Band[] = [];
  readonly #classes: number;

  constructor(classes: number) {
    this.#classes = classes;
  }

  take(pixels: number): Band {
    const i = this.#free.findIndex((b) => b.wsum.length === pixels);
    if (i < 0) return { acc: new Float32Array(pixels * this.#classes), wsum: new Float32Array(pixels) };
    const b = this.#free.splice(i, 1)[0]!;
    b.acc.fill(0);
    b.wsum.fill(0);
    return b;
  }

  give(band: Band | undefined): void {
    if (band && this.#free.length < 8) this.#free.push(band);
  }
}

/** The output grid and the blending as the accumulator sees them. */
export interface BandGeometry {
  width: number;
  height: number;
  chunkSize: number;
  tile: number;
  classes: number;
  /** Blending weights, tile × tile. */
  window: Float32Array;
}

/** Receives a finished label chunk (cw × ch, row-major) at chunk column cx, row cy. */
export type ChunkSink = (cx: number, cy: number, labels: Uint8Array, cw: number, ch: number) => void;

/** Labels of columns [x, x + cw) of a band `stripeWidth` wide: argmax + 1 where a tile reached, else 0. */
export function bandLabels(
  band: Band | undefined,
  stripeWidth: number,
  x: number,
  cw: number,
  h: number,
  classes: number,
): Uint8Array {
  const labels = new Uint8Array(cw * h);
  if (!band) return labels;
  for (let y = 0; y < h; y++) {
    for (let i = y * stripeWidth + x, o = y * cw, end = o + cw; o < end; i++, o++) {
      if (band.wsum[i] !== 0) labels[o] = argmaxAt(band.acc, i, classes) + 1;
    }
  }
  return labels;
}

export class StripeAccumulator {
  readonly #g: BandGeometry;
  readonly #stripe: Stripe;
  readonly #pool: BandPool;
  readonly #bands = new Map<number, Band>();
  readonly #rows: number;
  #nextRow = 0;

  constructor(g: BandGeometry, stripe: Stripe, pool: BandPool) {
    this.#g = g;
    this.#stripe = stripe;
    this.#pool = pool;
    this.#rows = Math.ceil(g.height / g.chunkSize);
  }

  /** Adds a tile's probabilities (tile × tile × C), weighted by the window, to the bands it covers. */
  add(t: TileOrigin, probs: Float32Array): void {
    const { tile, height, chunkSize: cs, classes: C, window } = this.#g;
    const { x0, x1 } = this.#stripe;
    const sw = x1 - x0;
    const xa = Math.max(t.x, x0);
    const xb = Math.min(t.x + tile, x1);
    const yb = Math.min(t.y + tile, height);
    for (let gy = t.y; gy < yb; gy++) {
      const r = Math.floor(gy / cs);
      const band = this.#band(r);
      const ly = gy - r * cs;
      const ty = gy - t.y;
      for (let gx = xa; gx < xb; gx++) {
        const tx = gx - t.x;
        const wgt = window[ty * tile + tx]!;
        const i = ly * sw + (gx - x0);
        band.wsum[i] += wgt;
        const src = (ty * tile + tx) * C;
        for (let c = 0; c < C; c++) band.acc[i * C + c] += wgt * probs[src + c]!;
      }
    }
  }

  /**
   * Argmaxes every band that no tile from `beforeY` on can reach and hands each of its chunks not yet on disk to
   * `sink`, top to bottom, left to right.
   */
  flush(beforeY: number, chunkDone: ChunkDone, sink: ChunkSink): void {
    const { width, height, chunkSize: cs, classes } = this.#g;
    const { x0, x1, c0, c1 } = this.#stripe;
    while (this.#nextRow < this.#rows && (this.#nextRow + 1) * cs <= beforeY) {
      const r = this.#nextRow++;
      const band = this.#bands.get(r);
      this.#bands.delete(r);
      const h = Math.min(cs, height - r * cs);
      for (let cx = c0; cx < c1; cx++) {
        if (chunkDone(cx, r)) continue;
        const cw = Math.min(cs, width - cx * cs);
        sink(cx, r, bandLabels(band, x1 - x0, cx * cs - x0, cw, h, classes), cw, h);
      }
      this.#pool.give(band);
    }
  }

  #band(r: number): Band {
    let b = this.#bands.get(r);
    if (!b) {
      const { chunkSize: cs, height } = this.#g;
      b = this.#pool.take((this.#stripe.x1 - this.#stripe.x0) * Math.min(cs, height - r * cs));
      this.#bands.set(r, b);
    }
    return b;
  }
}

/**
 * Blending of tile probabilities over one stripe of the output grid. Every tile adds its probabilities × the
 * blending window into accumulator rows (one per output row it covers); a row no later tile can reach is argmaxed
 * into its band's labels (class index + 1; 0 where no tile reached) and its accumulator goes back to the pool; a band
 * (one label chunk high) whose rows are all final is cut into label chunks and handed on.
 *
 * Accumulators are held per row, not per band, so that only the rows pending tiles still reach hold them: about one
 * tile height of rows instead of the two or three bands a tile row straddles. Besides using a third of the memory,
 * this matters for speed: the pool stops growing within the first tile row, and memory a process touches for the
 * first time is expensive (on the VMs measured, ~4 ms per MiB in page faults: more than blending it).
 */
import { argmaxAt } from '../core/sliding.ts';
import type { StageClock } from './stage-clock.ts';
import type { ChunkDone, Stripe, TileOrigin } from './tile-plan.ts';
import { axisMap, exp, expShifted } from './tile-probs.ts';

/** Weighted class-probability sums (pixels × C) and weight sums (pixels) of one output row of a stripe. */
export interface AccRow {
  acc: Float32Array;
  wsum: Float32Array;
}

/** One band of a stripe (a label chunk high): its labels, filled row by row as the rows become final. */
export interface Band {
  labels: Uint8Array;
  /**
   * With the image kept (`BandPool` made with `image`): the slide pixels the tiles read, planar RGB composited over
   * white as the OME-Zarr image stores them, and which of them a tile has painted (1).
   */
  rgb?: Uint8Array;
  painted?: Uint8Array;
}

/** Free buffers kept per size at most (rows are a few hundred at a time; bands two or three). */
const MAX_FREE_ROWS = 4096;
const MAX_FREE_BANDS = 8;

/**
 * Released bands and accumulator rows, zeroed and reused: the steady state allocates (almost) nothing per tile, so
 * neither the garbage nor the process's memory grows with the number of tiles.
 */
export class BandPool {
  readonly #freeBands: Band[] = [];
  readonly #freeRows = new Map<number, AccRow[]>();
  readonly #classes: number;
  readonly #image: boolean;

  /** `image`: bands also keep the tiles' pixels (see `StripeAccumulator.paint`). */
  constructor(classes: number, image = false) {
    this.#classes = classes;
    this.#image = image;
  }

  get image(): boolean {
    return this.#image;
  }

  /** A band of `pixels` pixels: labels 0, nothing painted. */
  take(pixels: number): Band {
    const i = this.#freeBands.findIndex((b) => b.labels.length === pixels);
    if (i < 0) {
      const band: Band = { labels: new Uint8Array(pixels) };
      if (this.#image) {
        band.rgb = new Uint8Array(3 * pixels);
        band.painted = new Uint8Array(pixels);
      }
      return band;
    }
    const b = this.#freeBands.splice(i, 1)[0]!;
    b.labels.fill(0);
    b.painted?.fill(0);
    return b;
  }

  give(band: Band | undefined): void {
    if (band && this.#freeBands.length < MAX_FREE_BANDS) this.#freeBands.push(band);
  }

  /** An accumulator row `width` pixels wide, all zero. */
  takeRow(width: number): AccRow {
    const row = this.#freeRows.get(width)?.pop();
    if (!row) return { acc: new Float32Array(width * this.#classes), wsum: new Float32Array(width) };
    row.acc.fill(0);
    row.wsum.fill(0);
    return row;
  }

  giveRow(row: AccRow): void {
    let free = this.#freeRows.get(row.wsum.length);
    if (!free) {
      free = [];
      this.#freeRows.set(row.wsum.length, free);
    }
    if (free.length < MAX_FREE_ROWS) free.push(row);
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

/**
 * Receives a finished label chunk (cw × ch, row-major) at chunk column cx, row cy, and, when the bands keep the
 * image and tiles painted every pixel of the chunk, its image chunk (planar RGB, chunk-size square, zero-padded).
 */
export type ChunkSink = (
  cx: number,
  cy: number,
  labels: Uint8Array,
  cw: number,
  ch: number,
  image?: Uint8Array,
) => void;

/**
 * Labels of `n` accumulated pixels from index `i` into `out` from `o`: argmax + 1 where a tile reached, else left
 * as it is (0).
 */
export function labelsInto(
  acc: Float32Array,
  wsum: Float32Array,
  i: number,
  n: number,
  classes: number,
  out: Uint8Array,
  o: number,
): void {
  if (classes === 2) {
    // argmaxAt for two classes: the second only when strictly larger.
    for (const end = o + n; o < end; i++, o++) {
      if (wsum[i] !== 0) out[o] = acc[2 * i + 1]! > acc[2 * i]! ? 2 : 1;
    }
    return;
  }
  for (const end = o + n; o < end; i++, o++) {
    if (wsum[i] !== 0) out[o] = argmaxAt(acc, i, classes) + 1;
  }
}

/**
 * One output row of `addLogits` for two classes, the common case, with scalars instead of the per-class loops:
 * the same operations in the same order (`v[c] = val` rounds to float32, the maximum is taken over the unrounded
 * values, the sum starts from 0).
 */
function blendRow2(
  top: Float64Array,
  bottom: Float64Array,
  fy: number,
  window: Float32Array,
  w0: number,
  n: number,
  acc: Float32Array,
  wsum: Float32Array,
  i0: number,
): void {
  for (let k = 0, q = 0, i = i0; k < n; k++, q += 2, i++) {
    const t0 = top[q]!;
    const t1 = top[q + 1]!;
    const a0 = t0 + (bottom[q]! - t0) * fy;
    const a1 = t1 + (bottom[q + 1]! - t1) * fy;
    let max = Number.NEGATIVE_INFINITY;
    if (a0 > max) max = a0;
    if (a1 > max) max = a1;
    const e0 = exp(Math.fround(a0) - max);
    const e1 = exp(Math.fround(a1) - max);
    const inv = 1 / (0 + e0 + e1);
    const wgt = window[w0 + k]!;
    wsum[i] += wgt;
    acc[2 * i] += wgt * Math.fround(Math.fround(e0) * inv);
    acc[2 * i + 1] += wgt * Math.fround(Math.fround(e1) * inv);
  }
}

export class StripeAccumulator {
  readonly #g: BandGeometry;
  readonly #stripe: Stripe;
  readonly #pool: BandPool;
  readonly #bands = new Map<number, Band>();
  /** Accumulator rows held, by grid row. */
  readonly #accRows = new Map<number, AccRow>();
  readonly #bandCount: number;
  /** The first band not yet handed on, and the first grid row not yet final. */
  #nextBand = 0;
  #nextRow = 0;
  readonly #clock: StageClock | undefined;
  /** Logits of two source rows interpolated along x (exact doubles), by row parity; see `addLogits`. */
  readonly #rowCache: [Float64Array, Float64Array] = [new Float64Array(0), new Float64Array(0)];
  readonly #rowOf = [-1, -1];
  readonly #scratch: Float32Array;

  constructor(g: BandGeometry, stripe: Stripe, pool: BandPool, clock?: StageClock) {
    this.#g = g;
    this.#stripe = stripe;
    this.#pool = pool;
    this.#bandCount = Math.ceil(g.height / g.chunkSize);
    this.#clock = clock;
    this.#scratch = new Float32Array(g.classes);
  }

  /** Adds a tile's probabilities (tile × tile × C), weighted by the window, to the bands it covers. */
  add(t: TileOrigin, probs: Float32Array): void {
    const { tile, height, classes: C, window } = this.#g;
    const { x0, x1 } = this.#stripe;
    const xa = Math.max(t.x, x0);
    const xb = Math.min(t.x + tile, x1);
    const yb = Math.min(t.y + tile, height);
    for (let gy = t.y; gy < yb; gy++) {
      const row = this.#accRow(gy);
      const ty = gy - t.y;
      for (let gx = xa; gx < xb; gx++) {
        const tx = gx - t.x;
        const wgt = window[ty * tile + tx]!;
        const i = gx - x0;
        row.wsum[i] += wgt;
        const src = (ty * tile + tx) * C;
        for (let c = 0; c < C; c++) row.acc[i * C + c] += wgt * probs[src + c]!;
      }
    }
  }

  /**
   * Keeps a tile's pixels (RGBA, tile × tile, read at `t`) for the image chunks of the bands it covers, composited
   * over white exactly as the image writer does. Only for tiles whose pixels are the slide's own at the grid (see
   * `tilesAreSlidePixels`): overlapping tiles then paint the same values.
   */
  paint(t: TileOrigin, img: { data: Uint8Array; width: number; height: number }): void {
    const { tile, height, chunkSize: cs } = this.#g;
    const { x0, x1 } = this.#stripe;
    const sw = x1 - x0;
    const xa = Math.max(t.x, x0);
    const xb = Math.min(t.x + tile, x1, t.x + img.width);
    const yb = Math.min(t.y + tile, height, t.y + img.height);
    const d = img.data;
    // Whole pixels as one little-endian word (R in the low byte) where the bytes are word-aligned.
    const words = d.byteOffset % 4 === 0 ? new Uint32Array(d.buffer, d.byteOffset, d.length >> 2) : null;
    for (let gy = t.y; gy < yb; gy++) {
      const r = Math.floor(gy / cs);
      const band = this.#band(r);
      const rgb = band.rgb;
      if (!rgb) return;
      const painted = band.painted!;
      const plane = band.labels.length;
      const row = (gy - r * cs) * sw - x0;
      // The leading pixels an earlier tile painted hold these very values (same slide pixels): skipped.
      let gx = xa;
      while (gx < xb && painted[row + gx] === 1) gx++;
      if (gx === xb) continue;
      painted.fill(1, row + gx, row + xb);
      for (let p = (gy - t.y) * img.width + (gx - t.x); gx < xb; gx++, p++) {
        const q = row + gx;
        const v = words ? words[p]! : 0;
        if (words && v >>> 24 === 255) {
          rgb[q] = v;
          rgb[plane + q] = v >>> 8;
          rgb[2 * plane + q] = v >>> 16;
          continue;
        }
        const a = d[4 * p + 3]!;
        if (a === 255) {
          rgb[q] = d[4 * p]!;
          rgb[plane + q] = d[4 * p + 1]!;
          rgb[2 * plane + q] = d[4 * p + 2]!;
        } else {
          for (let c = 0; c < 3; c++)
            rgb[c * plane + q] = Math.round((d[4 * p + c]! * a + 255 * (255 - a)) / 255);
        }
      }
    }
  }

  /** The image chunk of columns [x, x + cw) of band `band` (height h), if tiles painted all of it. */
  #imageChunk(band: Band | undefined, x: number, cw: number, h: number): Uint8Array | undefined {
    if (!band?.rgb || !band.painted) return undefined;
    const { chunkSize: cs } = this.#g;
    const sw = this.#stripe.x1 - this.#stripe.x0;
    for (let y = 0; y < h; y++) {
      if (band.painted.subarray(y * sw + x, y * sw + x + cw).indexOf(0) >= 0) return undefined;
    }
    const plane = band.labels.length;
    const chunk = new Uint8Array(3 * cs * cs);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < h; y++) {
        const src = c * plane + y * sw + x;
        chunk.set(band.rgb.subarray(src, src + cw), c * cs * cs + y * cs);
      }
    }
    return chunk;
  }

  /**
   * `add(t, upsampledSoftmax(logits, dims, b, tile, tile))` in one pass and without the tile-sized probability
   * buffer, bit for bit: the same double-precision arithmetic and the same float32 roundings (the softmax's
   * float32 scratch, the float32 probabilities) in the same order, computed only for the pixels inside the stripe
   * and the grid. The bilinear upsampling is separable: each source row is interpolated along x once (kept as
   * doubles, exactly the value the per-pixel formula computes first) and reused by the output rows between it and
   * the next.
   */
  addLogits(
    t: TileOrigin,
    logits: Float32Array,
    dims: { classes: number; height: number; width: number },
    b: number,
  ): void {
    const { tile, height, classes: C, window } = this.#g;
    if (dims.classes !== C) throw new Error(`blend: ${dims.classes} logit channels for ${C} classes`);
    const { x0, x1 } = this.#stripe;
    const txa = Math.max(t.x, x0) - t.x;
    const txb = Math.min(t.x + tile, x1) - t.x;
    const tyb = Math.min(t.y + tile, height) - t.y;
    if (txb <= txa || tyb <= 0) return;
    const n = txb - txa;
    const { height: h, width: w } = dims;
    const ay = axisMap(h, tile);
    const ax = axisMap(w, tile);
    const plane = h * w;
    const base = b * C * plane;
    const cache = this.#rowCache;
    if (cache[0].length < n * C) {
      cache[0] = new Float64Array(tile * C);
      cache[1] = new Float64Array(tile * C);
    }
    const rowOf = this.#rowOf;
    rowOf[0] = -1;
    rowOf[1] = -1;
    const row = (r: number): Float64Array => {
      const slot = r & 1;
      const out = cache[slot];
      if (rowOf[slot] === r) return out;
      rowOf[slot] = r;
      const lo = ax.lo;
      const hi = ax.hi;
      const frac = ax.frac;
      for (let c = 0; c < C; c++) {
        const p = base + c * plane + r * w;
        for (let k = 0, tx = txa; k < n; k++, tx++) {
          const tl = logits[p + lo[tx]!]!;
          const tr = logits[p + hi[tx]!]!;
          out[k * C + c] = tl + (tr - tl) * frac[tx]!;
        }
      }
      return out;
    };
    const v = this.#scratch;
    for (let ty = 0; ty < tyb; ty++) {
      const { acc, wsum } = this.#accRow(t.y + ty);
      const top = row(ay.lo[ty]!);
      const bottom = row(ay.hi[ty]!);
      const fy = ay.frac[ty]!;
      const wrow = ty * tile;
      let i = t.x + txa - x0;
      if (C === 2) {
        blendRow2(top, bottom, fy, window, wrow + txa, n, acc, wsum, i);
        continue;
      }
      for (let k = 0, tx = txa; k < n; k++, tx++, i++) {
        let max = Number.NEGATIVE_INFINITY;
        for (let c = 0, q = k * C; c < C; c++, q++) {
          const val = top[q]! + (bottom[q]! - top[q]!) * fy;
          v[c] = val;
          if (val > max) max = val;
        }
        const inv = expShifted(v, C, max);
        const wgt = window[wrow + tx]!;
        wsum[i] += wgt;
        for (let c = 0, j = i * C; c < C; c++, j++) acc[j] += wgt * Math.fround(v[c]! * inv);
      }
    }
  }

  /**
   * Makes every row that no tile from `beforeY` on can reach final (its labels into its band, its accumulator back
   * to the pool), then hands each chunk not yet on disk of every band whose rows are all final to `sink`, top to
   * bottom, left to right.
   */
  flush(beforeY: number, chunkDone: ChunkDone, sink: ChunkSink): void {
    const { width, height, chunkSize: cs, classes } = this.#g;
    const { x0, x1, c0, c1 } = this.#stripe;
    const sw = x1 - x0;
    const lastRow = Math.min(beforeY, height);
    if (this.#nextRow < lastRow) {
      const t0 = performance.now();
      for (; this.#nextRow < lastRow; this.#nextRow++) {
        const gy = this.#nextRow;
        const row = this.#accRows.get(gy);
        if (!row) continue; // no tile reached it: labels stay 0
        const r = Math.floor(gy / cs);
        labelsInto(row.acc, row.wsum, 0, sw, classes, this.#band(r).labels, (gy - r * cs) * sw);
        this.#accRows.delete(gy);
        this.#pool.giveRow(row);
      }
      this.#clock?.add('argmax', performance.now() - t0);
    }
    while (this.#nextBand < this.#bandCount && (this.#nextBand + 1) * cs <= beforeY) {
      const r = this.#nextBand++;
      const band = this.#bands.get(r);
      this.#bands.delete(r);
      const h = Math.min(cs, height - r * cs);
      for (let cx = c0; cx < c1; cx++) {
        if (chunkDone(cx, r)) continue;
        const cw = Math.min(cs, width - cx * cs);
        const labels = new Uint8Array(cw * h);
        if (band) {
          const x = cx * cs - x0;
          for (let y = 0; y < h; y++) labels.set(band.labels.subarray(y * sw + x, y * sw + x + cw), y * cw);
        }
        sink(cx, r, labels, cw, h, this.#imageChunk(band, cx * cs - x0, cw, h));
      }
      this.#pool.give(band);
    }
  }

  /** The accumulator of grid row `gy`, while it is held (not yet final). */
  heldRow(gy: number): AccRow | undefined {
    return this.#accRows.get(gy);
  }

  #accRow(gy: number): AccRow {
    let row = this.#accRows.get(gy);
    if (!row) {
      row = this.#pool.takeRow(this.#stripe.x1 - this.#stripe.x0);
      this.#accRows.set(gy, row);
    }
    return row;
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

/**
 * Batches of tiles through the model: RGBA pixels into an NCHW input buffer (rescaled and normalised), every
 * test-time augmentation view run, and each tile's class probabilities back at tile resolution (views mapped back to
 * the tile's frame and averaged).
 *
 * Two input buffers alternate, so one batch can be in the runtime while the next one is filled, and the steady
 * state allocates (almost) nothing per tile. Without TTA a tile's logits go straight into the stripe's bands
 * (`StripeAccumulator.addLogits`: upsampling, softmax and blending in one pass, no probability buffer).
 */

import { accumulateViewHWC, isIdentity, type View, viewPixelsNCHW } from '../core/tta.ts';
import { releasePixels } from '../slide/index.ts';
import type { RGBAImage } from '../slide/types.ts';
import type { StripeAccumulator } from './band-accumulator.ts';
import type { StageClock } from './stage-clock.ts';
import type { TileOrigin } from './tile-plan.ts';
import { upsampledSoftmax } from './tile-probs.ts';
import type { TileLogits, TileRunner } from './tile-runner.ts';
import type { PrefetchingTileSource } from './tile-source.ts';

/** The tiles of one batch and the model's logits for each view (in view order). */
export interface TileBatch {
  tiles: TileOrigin[];
  logits: TileLogits[];
}

/** A batch read and normalised into input buffer `slot`, ready for the model. */
export interface PreparedBatch {
  tiles: TileOrigin[];
  slot: number;
}

/** RGBA tile → NCHW float32 (rescale + normalise), composited over white where transparent (outside the slide). */
export function fillPixels(
  img: RGBAImage,
  tile: number,
  dst: Float32Array,
  offsetItem: number,
  runner: Pick<TileRunner, 'scale' | 'offset'>,
): void {
  const plane = tile * tile;
  const base = offsetItem * 3 * plane;
  const d = img.data;
  const [s0, s1, s2] = runner.scale;
  const [o0, o1, o2] = runner.offset;
  const w = Math.min(tile, img.width);
  const h = Math.min(tile, img.height);
  // Whole pixels as one little-endian word (R in the low byte) where the bytes are word-aligned.
  const words = d.byteOffset % 4 === 0 ? new Uint32Array(d.buffer, d.byteOffset, d.length >> 2) : null;
  for (let y = 0; y < h; y++) {
    let q = base + y * tile;
    for (let x = 0, p = y * img.width; x < w; x++, p++, q++) {
      let r: number;
      let g: number;
      let b: number;
      const v = words ? words[p]! : 0;
      if (words && v >>> 24 === 255) {
        r = v & 255;
        g = (v >>> 8) & 255;
        b = (v >>> 16) & 255;
      } else {
        const a = d[4 * p + 3]!;
        if (a === 255) {
          r = d[4 * p]!;
          g = d[4 * p + 1]!;
          b = d[4 * p + 2]!;
        } else {
          const k = 255 - a;
          r = Math.round((d[4 * p]! * a + 255 * k) / 255);
          g = Math.round((d[4 * p + 1]! * a + 255 * k) / 255);
          b = Math.round((d[4 * p + 2]! * a + 255 * k) / 255);
        }
      }
      dst[q] = r * s0 + o0;
      dst[q + plane] = g * s1 + o1;
      dst[q + 2 * plane] = b * s2 + o2;
    }
    // Columns past the image: white.
    if (w < tile) fillWhite(dst, q, tile - w, plane, s0 * 255 + o0, s1 * 255 + o1, s2 * 255 + o2);
  }
  // Rows past the image: white.
  if (h < tile)
    fillWhite(dst, base + h * tile, (tile - h) * tile, plane, s0 * 255 + o0, s1 * 255 + o1, s2 * 255 + o2);
}

/** `n` white pixels from `q` on in each of the three planes (`plane` apart). */
function fillWhite(dst: Float32Array, q: number, n: number, plane: number, r: number, g: number, b: number) {
  dst.fill(r, q, q + n);
  dst.fill(g, q + plane, q + plane + n);
  dst.fill(b, q + 2 * plane, q + 2 * plane + n);
}

export class TileBatchRunner {
  readonly #runner: TileRunner;
  readonly #tile: number;
  readonly #views: readonly View[];
  readonly #inputs: Float32Array[] = [];
  // With TTA, each input buffer has a twin holding the current view of its tiles.
  readonly #viewInputs: Float32Array[] = [];
  #nextInput = 0;
  #probs: Float32Array | undefined;
  #viewProbs: Float32Array | undefined;
  readonly #clock: StageClock | undefined;

  constructor(runner: TileRunner, tile: number, views: readonly View[], clock?: StageClock) {
    this.#runner = runner;
    this.#tile = tile;
    this.#views = views;
    this.#clock = clock;
  }

  /**
   * Reads the batch's tiles from `source` (in order) into the next input buffer and keeps the source's reads
   * topped up. The buffer is the one of the batch before last: that batch must be through `infer` already.
   */
  async prepare(tiles: TileOrigin[], source: PrefetchingTileSource): Promise<PreparedBatch> {
    const tile = this.#tile;
    const slot = this.#nextInput;
    this.#nextInput ^= 1;
    const len = tiles.length * 3 * tile * tile;
    if (this.#inputs[slot]?.length !== len) this.#inputs[slot] = new Float32Array(len);
    const clock = this.#clock;
    for (let b = 0; b < tiles.length; b++) {
      const img = await source.next();
      const pixels = this.#inputs[slot]!;
      if (clock) clock.time('normalise', () => fillPixels(img, tile, pixels, b, this.#runner));
      else fillPixels(img, tile, pixels, b, this.#runner);
      // Normalised, and painted when it was read (tile-inference): nothing reads the tile's pixels again.
      releasePixels(img.data);
    }
    source.topUp();
    return { tiles, slot };
  }

  /** Runs every view of a prepared batch through the model. */
  async infer({ tiles, slot }: PreparedBatch): Promise<TileBatch> {
    const tile = this.#tile;
    const n = tiles.length;
    const clock = this.#clock;
    const logits: TileLogits[] = [];
    for (const v of this.#views) {
      const identity = isIdentity(v);
      let input = this.#inputs[slot]!;
      if (!identity) {
        if (this.#viewInputs[slot]?.length !== input.length)
          this.#viewInputs[slot] = new Float32Array(input.length);
        input = viewPixelsNCHW(input, n, 3, tile, v, this.#viewInputs[slot]!);
      }
      const run = this.#runner.run(input, n, tile, tile);
      const out = await (clock ? clock.latency('model', run) : run);
      // A runner on another thread moves the input there and hands the same memory back with the logits.
      if (out.input) (identity ? this.#inputs : this.#viewInputs)[slot] = out.input;
      logits.push(out);
    }
    return { tiles, logits };
  }

  /** Blends item `b` of a batch into the stripe's bands at its tile's origin. */
  blend(batch: TileBatch, b: number, bands: StripeAccumulator): void {
    const t = batch.tiles[b]!;
    const clock = this.#clock;
    if (this.#views.length === 1) {
      // Upsampling and softmax fused into the blend: its time counts as blending.
      const l = batch.logits[0]!;
      if (clock) clock.time('blend', () => bands.addLogits(t, l.data, l, b));
      else bands.addLogits(t, l.data, l, b);
      return;
    }
    const probs = clock
      ? clock.time('upsample+softmax', () => this.probabilities(batch, b))
      : this.probabilities(batch, b);
    if (clock) clock.time('blend', () => bands.add(t, probs));
    else bands.add(t, probs);
  }

  /** Class probabilities (tile × tile × C) of item `b`; the buffer is reused by the next call. */
  probabilities(batch: TileBatch, b: number): Float32Array {
    const tile = this.#tile;
    const views = this.#views;
    const { logits } = batch;
    if (views.length === 1) {
      this.#probs = upsampledSoftmax(logits[0]!.data, logits[0]!, b, tile, tile, this.#probs);
      return this.#probs;
    }
    // Each view's probabilities back in the tile's frame, averaged.
    const C = this.#runner.numLabels;
    const probs = this.#probs ? this.#probs.fill(0) : new Float32Array(tile * tile * C);
    this.#probs = probs;
    for (const [k, v] of views.entries()) {
      this.#viewProbs = upsampledSoftmax(logits[k]!.data, logits[k]!, b, tile, tile, this.#viewProbs);
      accumulateViewHWC(this.#viewProbs, tile, C, v, 1 / views.length, probs);
    }
    return probs;
  }
}

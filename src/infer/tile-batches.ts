/**
 * Batches of tiles through the model: RGBA pixels into an NCHW input buffer (rescaled and normalised), every
 * test-time augmentation view run, and each tile's class probabilities back at tile resolution (views mapped back to
 * the tile's frame and averaged).
 *
 * Two input buffers alternate, so at most one batch is in the runtime while the next one is filled, and the steady
 * state allocates (almost) nothing per tile.
 */

import { accumulateViewHWC, isIdentity, type View, viewPixelsNCHW } from '../core/tta.ts';
import type { RGBAImage } from '../slide/types.ts';
import type { TileOrigin } from './tile-plan.ts';
import { upsampledSoftmax } from './tile-probs.ts';
import type { TileLogits, TileRunner } from './tile-runner.ts';
import type { PrefetchingTileSource } from './tile-source.ts';

/** The tiles of one batch and the model's logits for each view (in view order). */
export interface TileBatch {
  tiles: TileOrigin[];
  logits: TileLogits[];
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
  for (let y = 0; y < tile; y++) {
    for (let x = 0; x < tile; x++) {
      const q = y * tile + x;
      let r = 255;
      let g = 255;
      let b = 255;
      if (x < img.width && y < img.height) {
        const p = (y * img.width + x) * 4;
        const a = d[p + 3]!;
        if (a === 255) {
          r = d[p]!;
          g = d[p + 1]!;
          b = d[p + 2]!;
        } else {
          const k = 255 - a;
          r = Math.round((d[p]! * a + 255 * k) / 255);
          g = Math.round((d[p + 1]! * a + 255 * k) / 255);
          b = Math.round((d[p + 2]! * a + 255 * k) / 255);
        }
      }
      dst[base + q] = r * s0 + o0;
      dst[base + plane + q] = g * s1 + o1;
      dst[base + 2 * plane + q] = b * s2 + o2;
    }
  }
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

  constructor(runner: TileRunner, tile: number, views: readonly View[]) {
    this.#runner = runner;
    this.#tile = tile;
    this.#views = views;
  }

  /** Reads the batch's tiles from `source` (in order), runs every view, and keeps the source's reads topped up. */
  async run(tiles: TileOrigin[], source: PrefetchingTileSource): Promise<TileBatch> {
    const tile = this.#tile;
    const { pixels, view } = this.#inputBuffer(tiles.length);
    for (let b = 0; b < tiles.length; b++) fillPixels(await source.next(), tile, pixels, b, this.#runner);
    source.topUp();
    const logits: TileLogits[] = [];
    for (const v of this.#views) {
      const seen = isIdentity(v) ? pixels : viewPixelsNCHW(pixels, tiles.length, 3, tile, v, view!);
      logits.push(await this.#runner.run(seen, tiles.length, tile, tile));
    }
    return { tiles, logits };
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

  #inputBuffer(n: number): { pixels: Float32Array; view: Float32Array | undefined } {
    const k = this.#nextInput;
    this.#nextInput ^= 1;
    const len = n * 3 * this.#tile * this.#tile;
    if (this.#inputs[k]?.length !== len) this.#inputs[k] = new Float32Array(len);
    if (this.#views.length > 1 && this.#viewInputs[k]?.length !== len)
      this.#viewInputs[k] = new Float32Array(len);
    return { pixels: this.#inputs[k]!, view: this.#viewInputs[k] };
  }
}

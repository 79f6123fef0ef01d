/**
 * Sliding-window segmentation of an in-memory image: overlapping tiles, class probabilities blended with a
 * smooth window that falls off towards tile borders (no seams), then argmax. The model is any `TileModel`,
 * so the same code serves TF.js models (training validation, evaluate) and ONNX Runtime sessions.
 */

import { tf } from '../engine/index.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from './imagenet.ts';
import { isIdentity, type TestTimeAugmentation, ttaViews, type View } from './tta.ts';

export interface TileModel {
  numLabels: number;
  /** pixel values NHWC float32 (normalised) → logits NHWC at stride 4. */
  logits(pixels: tf.Tensor4D): Promise<tf.Tensor4D> | tf.Tensor4D;
}

export interface Normalisation {
  /** Per-channel mean and std in 0..1 units (after rescale by 1/255), as HF image processors. */
  mean: [number, number, number];
  std: [number, number, number];
}

export const IMAGENET: Normalisation = { mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] };

export interface SlidingOptions {
  tile: number;
  overlap: number;
  batch?: number;
  norm?: Normalisation;
  /** Test-time augmentation: probabilities averaged over flips ('flip': 4 views) or all 8 dihedral views ('d4'). */
  tta?: TestTimeAugmentation;
}

function applyView(x: tf.Tensor4D, v: View): tf.Tensor4D {
  let y = x;
  if (v.flipH) y = tf.reverse(y, 2);
  if (v.flipV) y = tf.reverse(y, 1);
  if (v.transpose) y = tf.transpose(y, [0, 2, 1, 3]);
  return y;
}

function invertView(y: tf.Tensor4D, v: View): tf.Tensor4D {
  let x = y;
  if (v.transpose) x = tf.transpose(x, [0, 2, 1, 3]);
  if (v.flipV) x = tf.reverse(x, 1);
  if (v.flipH) x = tf.reverse(x, 2);
  return x;
}

/** Tile probabilities [N, tile, tile, C], averaged over the test-time views (each seen in its own frame). */
async function tileProbabilities(model: TileModel, input: tf.Tensor4D, tile: number, views: View[]) {
  let sum: tf.Tensor4D | undefined;
  for (const v of views) {
    const identity = isIdentity(v);
    const seen = identity ? input : tf.tidy(() => applyView(input, v));
    const logits = await model.logits(seen);
    if (!identity) seen.dispose();
    const probs = tf.tidy(() =>
      invertView(
        tf.softmax(tf.image.resizeBilinear(logits, [tile, tile], false, true), -1) as tf.Tensor4D,
        v,
      ),
    );
    logits.dispose();
    if (sum) {
      const next = tf.add(sum, probs) as tf.Tensor4D;
      sum.dispose();
      probs.dispose();
      sum = next;
    } else sum = probs;
  }
  if (views.length === 1) return sum!;
  const mean = tf.div(sum!, views.length) as tf.Tensor4D;
  sum!.dispose();
  return mean;
}

/** HWC uint8 RGB → NHWC float32 normalised tensor. */
export function normaliseImage(
  image: Uint8Array,
  width: number,
  height: number,
  norm: Normalisation = IMAGENET,
): tf.Tensor4D {
  const out = normaliseInto(image, width * height, new Float32Array(width * height * 3), 0, norm);
  return tf.tensor4d(out, [1, height, width, 3]);
}

/** Normalises `pixels` HWC uint8 RGB pixels into `out` from element `offset` (no tensor round trip). */
export function normaliseInto(
  image: Uint8Array,
  pixels: number,
  out: Float32Array,
  offset: number,
  norm: Normalisation = IMAGENET,
): Float32Array {
  const scale = norm.std.map((s) => 1 / (255 * s));
  const shift = norm.mean.map((m, i) => m / norm.std[i]!);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) out[offset + p * 3 + c] = image[p * 3 + c]! * scale[c]! - shift[c]!;
  }
  return out;
}

/** Tile origins covering [0, size) with the given tile and stride; the last tile is flush with the end. */
export function tileOrigins(size: number, tile: number, stride: number): number[] {
  if (size <= tile) return [0];
  const out: number[] = [];
  for (let p = 0; ; p += stride) {
    if (p + tile >= size) {
      out.push(size - tile);
      break;
    }
    out.push(p);
  }
  return out;
}

/** Separable blending weights: a raised cosine over the overlap at each side, flat in the middle, never zero. */
export function blendWindow(tile: number, overlap: number): Float32Array {
  const w1 = new Float32Array(tile);
  for (let i = 0; i < tile; i++) {
    const d = Math.min(i + 0.5, tile - i - 0.5);
    w1[i] = overlap > 0 && d < overlap ? 0.5 - 0.5 * Math.cos((Math.PI * d) / overlap) : 1;
    w1[i] = Math.max(w1[i]!, 1e-3);
  }
  const w = new Float32Array(tile * tile);
  for (let y = 0; y < tile; y++) for (let x = 0; x < tile; x++) w[y * tile + x] = w1[y]! * w1[x]!;
  return w;
}

/**
 * Class probabilities (H×W×C, float32) of a whole image. Images smaller than the tile are padded
 * (reflect-free zero padding after normalisation, as the model would see at a slide edge).
 */
export async function slidingWindowProbabilities(
  model: TileModel,
  image: Uint8Array,
  width: number,
  height: number,
  o: SlidingOptions,
): Promise<Float32Array> {
  const C = model.numLabels;
  const tile = o.tile;
  const stride = Math.max(1, tile - o.overlap);
  const acc = new Float32Array(width * height * C);
  const wsum = new Float32Array(width * height);
  const window = blendWindow(tile, o.overlap);
  const full = normaliseImage(image, width, height, o.norm);
  const padded = tf.tidy(() =>
    width < tile || height < tile
      ? full.pad([
          [0, 0],
          [0, Math.max(0, tile - height)],
          [0, Math.max(0, tile - width)],
          [0, 0],
        ])
      : full.clone(),
  ) as tf.Tensor4D;
  full.dispose();
  const ph = padded.shape[1];
  const pw = padded.shape[2];
  const origins: [number, number][] = [];
  for (const y of tileOrigins(ph, tile, stride))
    for (const x of tileOrigins(pw, tile, stride)) origins.push([x, y]);
  const batch = o.batch ?? 1;
  const views = ttaViews(o.tta);
  try {
    for (let i = 0; i < origins.length; i += batch) {
      const group = origins.slice(i, i + batch);
      const input = tf.tidy(() =>
        tf.concat(
          group.map(([x, y]) => padded.slice([0, y, x, 0], [1, tile, tile, 3])),
          0,
        ),
      ) as tf.Tensor4D;
      const probs = await tileProbabilities(model, input, tile, views);
      input.dispose();
      const data = (await probs.data()) as Float32Array;
      probs.dispose();
      group.forEach(([x0, y0], b) => {
        const base = b * tile * tile * C;
        for (let y = 0; y < tile; y++) {
          const gy = y0 + y;
          if (gy >= height) break;
          for (let x = 0; x < tile; x++) {
            const gx = x0 + x;
            if (gx >= width) break;
            const wgt = window[y * tile + x]!;
            const gi = gy * width + gx;
            wsum[gi] += wgt;
            const src = base + (y * tile + x) * C;
            for (let c = 0; c < C; c++) acc[gi * C + c] += wgt * data[src + c]!;
          }
        }
      });
    }
  } finally {
    padded.dispose();
  }
  for (let i = 0; i < width * height; i++) {
    const inv = 1 / wsum[i]!;
    for (let c = 0; c < C; c++) acc[i * C + c] *= inv;
  }
  return acc;
}

/** Index of the largest of the `numLabels` scores of pixel `i` in an interleaved (…×C) map; ties go to the first. */
export function argmaxAt(scores: Float32Array, i: number, numLabels: number): number {
  const base = i * numLabels;
  let best = 0;
  let bv = scores[base]!;
  for (let c = 1; c < numLabels; c++) {
    const v = scores[base + c]!;
    if (v > bv) {
      bv = v;
      best = c;
    }
  }
  return best;
}

/** Argmax over the last axis of an H×W×C probability map. */
export function argmaxLabels(probs: Float32Array, numLabels: number): Uint8Array {
  const n = probs.length / numLabels;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = argmaxAt(probs, i, numLabels);
  return out;
}

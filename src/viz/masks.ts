/**
 * Label maps as pictures: colour masks, masks blended over the image, and evaluation error maps
 * (true positive / false positive / false negative pixels).
 */
import { classColour, type RGB } from '../core/palette.ts';
import { type LabelMap, type PixelImage, type RGBAImage, toRGBA } from './types.ts';

function sameSize(a: { width: number; height: number }, b: LabelMap, what: string): void {
  if (a.width !== b.width || a.height !== b.height) {
    throw new RangeError(`${what}: ${b.width}x${b.height} does not match the image's ${a.width}x${a.height}`);
  }
  if (b.data.length !== b.width * b.height) {
    throw new RangeError(`${what}: ${b.data.length} values for ${b.width}x${b.height} pixels`);
  }
}

function colourOf(palette: RGB[] | undefined, k: number): RGB {
  return palette?.[k] ?? classColour(k);
}

/** Each pixel in its class colour, opaque (classes beyond `palette` take `classColour`). */
export function maskToRGBA(mask: LabelMap, palette?: RGB[]): RGBAImage {
  sameSize(mask, mask, 'mask');
  const n = mask.width * mask.height;
  const data = new Uint8Array(n * 4);
  const cache = new Map<number, RGB>();
  for (let i = 0; i < n; i++) {
    const k = mask.data[i]!;
    let c = cache.get(k);
    if (!c) {
      c = colourOf(palette, k);
      cache.set(k, c);
    }
    data.set(c, i * 4);
    data[i * 4 + 3] = 255;
  }
  return { data, width: mask.width, height: mask.height };
}

export interface OverlayOptions {
  /** Classes left unpainted so the tissue shows through; default [0] (background). */
  skip?: number[];
}

/** Blends class colours over `image` (grey, RGB or RGBA): out = (1 − alpha)·image + alpha·colour. */
export function overlay(
  image: PixelImage,
  mask: LabelMap,
  palette?: RGB[],
  alpha = 0.5,
  options: OverlayOptions = {},
): RGBAImage {
  const base = toRGBA(image);
  sameSize(base, mask, 'mask');
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`overlay: alpha must be in [0, 1], got ${alpha}`);
  const skip = new Set(options.skip ?? [0]);
  const data = Uint8Array.from(base.data);
  for (let i = 0; i < mask.data.length; i++) {
    const k = mask.data[i]!;
    if (skip.has(k)) continue;
    const c = colourOf(palette, k);
    for (let j = 0; j < 3; j++) data[i * 4 + j] = Math.round((1 - alpha) * data[i * 4 + j]! + alpha * c[j]!);
  }
  return { data, width: base.width, height: base.height };
}

/** Colours of the error map. */
export const ERROR_COLOURS = {
  /** Foreground predicted with the right class. */
  truePositive: [0, 200, 0] as RGB,
  /** Foreground predicted where the target is background. */
  falsePositive: [230, 0, 0] as RGB,
  /** Background predicted where the target is foreground. */
  falseNegative: [0, 90, 255] as RGB,
  /** Foreground predicted with the wrong foreground class (multiclass only). */
  wrongClass: [255, 160, 0] as RGB,
};

export interface ErrorMapOptions {
  /** The background class; default 0. */
  background?: number;
  /** Target value of unlabelled pixels (left transparent). */
  ignoreIndex?: number | null;
}

/**
 * An RGBA map of prediction errors: TP green, FP red, FN blue, wrong foreground class orange; correct
 * background and ignored pixels are transparent (alpha 0).
 */
export function errorMap(pred: LabelMap, target: LabelMap, options: ErrorMapOptions = {}): RGBAImage {
  sameSize(target, pred, 'pred');
  sameSize(target, target, 'target');
  const bg = options.background ?? 0;
  const ignore = options.ignoreIndex ?? null;
  const n = target.width * target.height;
  const data = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    const t = target.data[i]!;
    const p = pred.data[i]!;
    if (t === ignore || (t === bg && p === bg)) continue;
    const c =
      p === t
        ? ERROR_COLOURS.truePositive
        : t === bg
          ? ERROR_COLOURS.falsePositive
          : p === bg
            ? ERROR_COLOURS.falseNegative
            : ERROR_COLOURS.wrongClass;
    data.set(c, i * 4);
    data[i * 4 + 3] = 255;
  }
  return { data, width: target.width, height: target.height };
}

/** The error map blended over the image with weight `alpha` where it is not transparent. */
export function errorOverlay(
  image: PixelImage,
  pred: LabelMap,
  target: LabelMap,
  alpha = 0.5,
  options: ErrorMapOptions = {},
): RGBAImage {
  const base = toRGBA(image);
  sameSize(base, target, 'target');
  const errors = errorMap(pred, target, options);
  const data = Uint8Array.from(base.data);
  for (let i = 0; i < errors.width * errors.height; i++) {
    if (errors.data[i * 4 + 3] === 0) continue;
    for (let j = 0; j < 3; j++) {
      data[i * 4 + j] = Math.round((1 - alpha) * data[i * 4 + j]! + alpha * errors.data[i * 4 + j]!);
    }
  }
  return { data, width: base.width, height: base.height };
}

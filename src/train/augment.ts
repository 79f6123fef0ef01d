/**
 * Joint image/mask augmentation on HWC uint8 buffers: random scale + crop, flips, 90° rotations, colour jitter
 * and H&E stain jitter. Geometry is applied identically to image and mask (nearest for masks); colour only to
 * the image. Everything draws from the given seeded generator, so a run is reproducible.
 */
import type { Rng } from '../patching/random.ts';

export interface Sample {
  /** HWC RGB uint8. */
  image: Uint8Array;
  /** HW class indices. */
  mask: Uint8Array;
  width: number;
  height: number;
}

export interface AugmentOptions {
  /** Output crop size (square). */
  crop: number;
  /** Random rescale range before cropping (mmseg: [0.5, 2.0]); [1, 1] disables. */
  scale?: [number, number];
  hflip?: boolean;
  vflip?: boolean;
  rot90?: boolean;
  /** Colour jitter strengths (0 disables): brightness, contrast, saturation as ± fractions, hue in turns. */
  brightness?: number;
  contrast?: number;
  saturation?: number;
  hue?: number;
  /** H&E stain jitter (Tellez et al. 2018): stain concentrations scaled by 1±sigma and shifted by ±sigma. */
  stainSigma?: number;
  /** Mask value for pixels padded in when the crop is larger than the image. */
  ignoreIndex?: number;
}

/** Bilinear resize of an HWC uint8 image. */
function resizeImage(src: Uint8Array, w: number, h: number, c: number, ow: number, oh: number): Uint8Array {
  const out = new Uint8Array(ow * oh * c);
  const sx = w / ow;
  const sy = h / oh;
  for (let y = 0; y < oh; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const wy = fy - y0;
    for (let x = 0; x < ow; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, w - 1);
      const wx = fx - x0;
      for (let k = 0; k < c; k++) {
        const a = src[(y0 * w + x0) * c + k]!;
        const b = src[(y0 * w + x1) * c + k]!;
        const d = src[(y1 * w + x0) * c + k]!;
        const e = src[(y1 * w + x1) * c + k]!;
        out[(y * ow + x) * c + k] = Math.round(
          (a * (1 - wx) + b * wx) * (1 - wy) + (d * (1 - wx) + e * wx) * wy,
        );
      }
    }
  }
  return out;
}

/** Nearest-neighbour resize of a single-channel label map. */
function resizeMask(src: Uint8Array, w: number, h: number, ow: number, oh: number): Uint8Array {
  const out = new Uint8Array(ow * oh);
  for (let y = 0; y < oh; y++) {
    const yy = Math.min(h - 1, Math.floor(((y + 0.5) * h) / oh));
    for (let x = 0; x < ow; x++)
      out[y * ow + x] = src[yy * w + Math.min(w - 1, Math.floor(((x + 0.5) * w) / ow))]!;
  }
  return out;
}

/** Crops (and pads with 0 / ignoreIndex where the window leaves the image). */
function cropBoth(s: Sample, x0: number, y0: number, size: number, ignore: number): Sample {
  const image = new Uint8Array(size * size * 3);
  const mask = new Uint8Array(size * size).fill(ignore);
  for (let y = 0; y < size; y++) {
    const sy = y0 + y;
    if (sy < 0 || sy >= s.height) continue;
    for (let x = 0; x < size; x++) {
      const sx = x0 + x;
      if (sx < 0 || sx >= s.width) continue;
      const si = sy * s.width + sx;
      const di = y * size + x;
      image[di * 3] = s.image[si * 3]!;
      image[di * 3 + 1] = s.image[si * 3 + 1]!;
      image[di * 3 + 2] = s.image[si * 3 + 2]!;
      mask[di] = s.mask[si]!;
    }
  }
  return { image, mask, width: size, height: size };
}

/** Applies a pixel-index mapping (flip/rotate of a square crop) to image and mask together. */
function remap(s: Sample, map: (x: number, y: number) => [number, number]): Sample {
  const n = s.width;
  const image = new Uint8Array(s.image.length);
  const mask = new Uint8Array(s.mask.length);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const [sx, sy] = map(x, y);
      const si = sy * n + sx;
      const di = y * n + x;
      image[di * 3] = s.image[si * 3]!;
      image[di * 3 + 1] = s.image[si * 3 + 1]!;
      image[di * 3 + 2] = s.image[si * 3 + 2]!;
      mask[di] = s.mask[si]!;
    }
  }
  return { image, mask, width: n, height: n };
}

// Ruifrok & Johnston H&E-DAB stain vectors (rows: haematoxylin, eosin, DAB), as skimage's rgb2hed.
const RGB_FROM_HED = [
  [0.65, 0.7, 0.29],
  [0.07, 0.99, 0.11],
  [0.27, 0.57, 0.78],
];
const HED_FROM_RGB = invert3(RGB_FROM_HED);

function invert3(m: number[][]): number[][] {
  const [a, b, c] = m[0]!;
  const [d, e, f] = m[1]!;
  const [g, h, i] = m[2]!;
  const A = e! * i! - f! * h!;
  const B = -(d! * i! - f! * g!);
  const C = d! * h! - e! * g!;
  const det = a! * A + b! * B + c! * C;
  return [
    [A / det, -(b! * i! - c! * h!) / det, (b! * f! - c! * e!) / det],
    [B / det, (a! * i! - c! * g!) / det, -(a! * f! - c! * d!) / det],
    [C / det, -(a! * h! - b! * g!) / det, (a! * e! - b! * d!) / det],
  ];
}

/** Optical densities per stain for one RGB pixel (skimage rgb2hed convention: -log(max(rgb,1e-6))). */
export function rgbToHed(r: number, g: number, b: number): [number, number, number] {
  const od = [r, g, b].map((v) => -Math.log(Math.max(v / 255, 1e-6)));
  const out: [number, number, number] = [0, 0, 0];
  for (let j = 0; j < 3; j++)
    out[j] = od[0]! * HED_FROM_RGB[0]![j]! + od[1]! * HED_FROM_RGB[1]![j]! + od[2]! * HED_FROM_RGB[2]![j]!;
  return out;
}

function stainJitter(img: Uint8Array, rng: Rng, sigma: number): void {
  const alpha = [0, 1, 2].map(() => rng.uniform(1 - sigma, 1 + sigma));
  const beta = [0, 1, 2].map(() => rng.uniform(-sigma, sigma));
  for (let p = 0; p < img.length; p += 3) {
    const hed = rgbToHed(img[p]!, img[p + 1]!, img[p + 2]!);
    for (let k = 0; k < 3; k++) hed[k] = Math.max(0, hed[k]! * alpha[k]! + beta[k]! * 0.1);
    for (let c = 0; c < 3; c++) {
      const od =
        hed[0] * RGB_FROM_HED[0]![c]! + hed[1] * RGB_FROM_HED[1]![c]! + hed[2] * RGB_FROM_HED[2]![c]!;
      img[p + c] = Math.max(0, Math.min(255, Math.round(255 * Math.exp(-od))));
    }
  }
}

function colourJitter(img: Uint8Array, rng: Rng, o: AugmentOptions): void {
  const b = o.brightness ? rng.uniform(-o.brightness, o.brightness) * 255 : 0;
  const c = o.contrast ? rng.uniform(1 - o.contrast, 1 + o.contrast) : 1;
  const s = o.saturation ? rng.uniform(1 - o.saturation, 1 + o.saturation) : 1;
  const h = o.hue ? rng.uniform(-o.hue, o.hue) : 0;
  // Hue rotation as a rotation about the grey axis (YIQ-style), cheap and invertible.
  const cosH = Math.cos(h * 2 * Math.PI);
  const sinH = Math.sin(h * 2 * Math.PI);
  const k = 1 / 3;
  const sq = Math.sqrt(k);
  const r00 = cosH + (1 - cosH) * k;
  const r01 = k * (1 - cosH) - sq * sinH;
  const r02 = k * (1 - cosH) + sq * sinH;
  for (let p = 0; p < img.length; p += 3) {
    let r = img[p]!;
    let g = img[p + 1]!;
    let bl = img[p + 2]!;
    if (h !== 0) {
      const nr = r * r00 + g * r01 + bl * r02;
      const ng = r * r02 + g * r00 + bl * r01;
      const nb = r * r01 + g * r02 + bl * r00;
      r = nr;
      g = ng;
      bl = nb;
    }
    const grey = 0.299 * r + 0.587 * g + 0.114 * bl;
    r = grey + (r - grey) * s;
    g = grey + (g - grey) * s;
    bl = grey + (bl - grey) * s;
    img[p] = Math.max(0, Math.min(255, Math.round((r - 128) * c + 128 + b)));
    img[p + 1] = Math.max(0, Math.min(255, Math.round((g - 128) * c + 128 + b)));
    img[p + 2] = Math.max(0, Math.min(255, Math.round((bl - 128) * c + 128 + b)));
  }
}

/** One augmented crop of `s`. The input is not modified. */
export function augment(s: Sample, o: AugmentOptions, rng: Rng): Sample {
  const ignore = o.ignoreIndex ?? 255;
  let cur = s;
  const [lo, hi] = o.scale ?? [1, 1];
  if (lo !== 1 || hi !== 1) {
    const f = rng.uniform(lo, hi);
    const w = Math.max(1, Math.round(s.width * f));
    const h = Math.max(1, Math.round(s.height * f));
    cur = {
      image: resizeImage(s.image, s.width, s.height, 3, w, h),
      mask: resizeMask(s.mask, s.width, s.height, w, h),
      width: w,
      height: h,
    };
  }
  const size = o.crop;
  const x0 = cur.width > size ? rng.int(cur.width - size + 1) : 0;
  const y0 = cur.height > size ? rng.int(cur.height - size + 1) : 0;
  cur = cropBoth(cur, x0, y0, size, ignore);
  const n = size - 1;
  if (o.hflip && rng.next() < 0.5) cur = remap(cur, (x, y) => [n - x, y]);
  if (o.vflip && rng.next() < 0.5) cur = remap(cur, (x, y) => [x, n - y]);
  if (o.rot90) {
    const k = rng.int(4);
    if (k === 1) cur = remap(cur, (x, y) => [y, n - x]);
    else if (k === 2) cur = remap(cur, (x, y) => [n - x, n - y]);
    else if (k === 3) cur = remap(cur, (x, y) => [n - y, x]);
  }
  if (cur === s) cur = { ...s, image: s.image.slice(), mask: s.mask.slice() };
  if (o.stainSigma) stainJitter(cur.image, rng, o.stainSigma);
  if (o.brightness || o.contrast || o.saturation || o.hue) colourJitter(cur.image, rng, o);
  return cur;
}

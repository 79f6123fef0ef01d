/**
 * Joint image/mask augmentation on HWC uint8 buffers: random scale + crop, flips, 90° rotations, colour jitter
 * and H&E stain jitter. Geometry is applied identically to image and mask (nearest for masks); colour only to
 * the image. Everything draws from the given seeded generator, so a run is reproducible.
 */
import type { Rng } from './random.ts';

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

/**
 * The `size`×`size` window at (x0, y0) of `s` resized to `ow`×`oh` (bilinear for the image, nearest for the mask),
 * computed for the window's pixels only: each output pixel is exactly what resizing the whole image and then
 * cropping gives, at a fraction of the cost. Pixels outside the resized image are 0 (mask: `ignore`).
 */
function resizedCrop(
  s: Sample,
  ow: number,
  oh: number,
  x0: number,
  y0: number,
  size: number,
  ignore: number,
): Sample {
  const { width: w, height: h } = s;
  const src = s.image;
  const image = new Uint8Array(size * size * 3);
  const mask = new Uint8Array(size * size).fill(ignore);
  const sx = w / ow;
  const sy = h / oh;
  // Per output column: bilinear taps and weight, nearest mask column.
  const xa = new Int32Array(size);
  const xb = new Int32Array(size);
  const wxs = new Float64Array(size);
  const xm = new Int32Array(size);
  const xEnd = Math.min(size, ow - x0);
  for (let x = Math.max(0, -x0); x < xEnd; x++) {
    const X = x0 + x;
    const fx = Math.min(Math.max((X + 0.5) * sx - 0.5, 0), w - 1);
    xa[x] = Math.floor(fx);
    xb[x] = Math.min(xa[x]! + 1, w - 1);
    wxs[x] = fx - xa[x]!;
    xm[x] = Math.min(w - 1, Math.floor(((X + 0.5) * w) / ow));
  }
  const yEnd = Math.min(size, oh - y0);
  for (let y = Math.max(0, -y0); y < yEnd; y++) {
    const Y = y0 + y;
    const fy = Math.min(Math.max((Y + 0.5) * sy - 0.5, 0), h - 1);
    const ya = Math.floor(fy);
    const yb = Math.min(ya + 1, h - 1);
    const wy = fy - ya;
    const ym = Math.min(h - 1, Math.floor(((Y + 0.5) * h) / oh));
    for (let x = Math.max(0, -x0); x < xEnd; x++) {
      const wx = wxs[x]!;
      const p00 = (ya * w + xa[x]!) * 3;
      const p01 = (ya * w + xb[x]!) * 3;
      const p10 = (yb * w + xa[x]!) * 3;
      const p11 = (yb * w + xb[x]!) * 3;
      const di = y * size + x;
      for (let k = 0; k < 3; k++) {
        image[di * 3 + k] = Math.round(
          (src[p00 + k]! * (1 - wx) + src[p01 + k]! * wx) * (1 - wy) +
            (src[p10 + k]! * (1 - wx) + src[p11 + k]! * wx) * wy,
        );
      }
      mask[di] = s.mask[ym * w + xm[x]!]!;
    }
  }
  return { image, mask, width: size, height: size };
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

/** Optical density of each 8-bit value (skimage rgb2hed convention: -log(max(v/255, 1e-6))). */
const OPTICAL_DENSITY = Float64Array.from({ length: 256 }, (_, v) => -Math.log(Math.max(v / 255, 1e-6)));

/** Optical densities per stain for one RGB pixel (skimage's rgb2hed, without its clamp at 0). */
export function rgbToHed(r: number, g: number, b: number): [number, number, number] {
  const out: [number, number, number] = [0, 0, 0];
  hedInto(r, g, b, out);
  return out;
}

function hedInto(r: number, g: number, b: number, out: number[]): void {
  const o0 = OPTICAL_DENSITY[r]!;
  const o1 = OPTICAL_DENSITY[g]!;
  const o2 = OPTICAL_DENSITY[b]!;
  for (let j = 0; j < 3; j++)
    out[j] = o0 * HED_FROM_RGB[0]![j]! + o1 * HED_FROM_RGB[1]![j]! + o2 * HED_FROM_RGB[2]![j]!;
}

function stainJitter(img: Uint8Array, rng: Rng, sigma: number): void {
  const alpha = [0, 1, 2].map(() => rng.uniform(1 - sigma, 1 + sigma));
  const beta = [0, 1, 2].map(() => rng.uniform(-sigma, sigma));
  const hed = [0, 0, 0];
  for (let p = 0; p < img.length; p += 3) {
    hedInto(img[p]!, img[p + 1]!, img[p + 2]!, hed);
    // No clamping of the concentrations (skimage's separate_stains clamps at 0): that would recolour ~1 in 8
    // values of an H&E image even at zero jitter, a shift between augmented training crops and raw validation
    // images. Only the final RGB is clipped, so a zero jitter is the identity up to rounding.
    for (let k = 0; k < 3; k++) hed[k] = hed[k]! * alpha[k]! + beta[k]! * 0.1;
    for (let c = 0; c < 3; c++) {
      const od =
        hed[0]! * RGB_FROM_HED[0]![c]! + hed[1]! * RGB_FROM_HED[1]![c]! + hed[2]! * RGB_FROM_HED[2]![c]!;
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
  const [lo, hi] = o.scale ?? [1, 1];
  let w = s.width;
  let h = s.height;
  const scaled = lo !== 1 || hi !== 1;
  if (scaled) {
    const f = rng.uniform(lo, hi);
    w = Math.max(1, Math.round(s.width * f));
    h = Math.max(1, Math.round(s.height * f));
  }
  const size = o.crop;
  const x0 = w > size ? rng.int(w - size + 1) : 0;
  const y0 = h > size ? rng.int(h - size + 1) : 0;
  // Always a fresh crop: the input sample is never modified.
  let cur = scaled ? resizedCrop(s, w, h, x0, y0, size, ignore) : cropBoth(s, x0, y0, size, ignore);
  const n = size - 1;
  if (o.hflip && rng.next() < 0.5) cur = remap(cur, (x, y) => [n - x, y]);
  if (o.vflip && rng.next() < 0.5) cur = remap(cur, (x, y) => [x, n - y]);
  if (o.rot90) {
    const k = rng.int(4);
    if (k === 1) cur = remap(cur, (x, y) => [y, n - x]);
    else if (k === 2) cur = remap(cur, (x, y) => [n - x, n - y]);
    else if (k === 3) cur = remap(cur, (x, y) => [n - y, x]);
  }
  if (o.stainSigma) stainJitter(cur.image, rng, o.stainSigma);
  if (o.brightness || o.contrast || o.saturation || o.hue) colourJitter(cur.image, rng, o);
  return cur;
}

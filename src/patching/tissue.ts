/**
 * Tissue detection on a low-resolution view of a slide, after the CLAM recipe (WholeSlideImage.segmentTissue):
 * HSV saturation → median filter → Otsu threshold → fill small holes → drop small objects.
 *
 * Median filtering and thresholding commute (the median of thresholded values is the threshold of the median),
 * so filtering the saturation first, as CLAM does, gives the same mask as filtering the binary mask; Otsu's threshold
 * is computed on the histogram of the filtered saturation, which is what CLAM's `use_otsu` does.
 */
import sharp from 'sharp';
import type { RGBAImage, Slide } from '../slide/types.ts';

export interface TissueMask {
  /** Row-major, 1 = tissue, 0 = background. */
  mask: Uint8Array;
  width: number;
  height: number;
  /** Level-0 pixels per mask pixel along x (y can differ by rounding: use slideHeight / height). */
  downsample: number;
  /** Saturation threshold used (tissue where filtered saturation > threshold). */
  threshold: number;
  /** Level-0 size of the slide the mask covers. */
  slideWidth: number;
  slideHeight: number;
  /** The pyramid level the mask was computed from. */
  level: number;
}

export interface TissueOptions {
  /** Longest side of the image the mask is computed on (default 1536; the level is resized to fit). */
  maxSize?: number;
  /** Median filter aperture, odd (CLAM mthresh, default 7). 1 disables it. */
  medianSize?: number;
  /** Fixed saturation threshold instead of Otsu's. */
  threshold?: number;
  /**
   * Lower bound on Otsu's threshold (default 8, CLAM's sthresh preset): on a slide with no tissue Otsu splits the
   * scanner noise of the white background, and this floor keeps that noise out.
   */
  minThreshold?: number;
  /**
   * Holes smaller than this area in level-0 px² are filled (CLAM's a_h). Default: `maxHolePixels` mask pixels.
   * Areas default to mask pixels rather than level-0 pixels because slides range from 1k-px thumbnails to 100k-px
   * scans: a fixed level-0 area that drops dust on a scan would erase all tissue of a thumbnail.
   */
  maxHoleArea?: number;
  /** Holes smaller than this many mask pixels are filled when maxHoleArea is not given (default 64). */
  maxHolePixels?: number;
  /** Tissue pieces smaller than this area in level-0 px² are dropped (CLAM's a_t). Default: `minObjectPixels`. */
  minObjectArea?: number;
  /** Tissue pieces smaller than this many mask pixels are dropped when minObjectArea is not given (default 64). */
  minObjectPixels?: number;
}

const DEFAULTS = {
  maxSize: 1536,
  medianSize: 7,
  minThreshold: 8,
  maxHolePixels: 64,
  minObjectPixels: 64,
};

/** OpenCV's HSV saturation (0..255); pixels with alpha < 128 (outside the slide) count as background (0). */
export function saturation(data: Uint8Array, width: number, height: number, channels: 3 | 4): Uint8Array {
  const n = width * height;
  if (data.length < n * channels) {
    throw new Error(`saturation: ${data.length} bytes is too few for ${width}x${height}x${channels}`);
  }
  const out = new Uint8Array(n);
  for (let i = 0, p = 0; i < n; i++, p += channels) {
    if (channels === 4 && data[p + 3] < 128) continue;
    const r = data[p];
    const g = data[p + 1];
    const b = data[p + 2];
    const max = r > g ? Math.max(r, b) : Math.max(g, b);
    if (max === 0) continue;
    const min = r < g ? Math.min(r, b) : Math.min(g, b);
    out[i] = Math.round((255 * (max - min)) / max);
  }
  return out;
}

/**
 * Median filter of an 8-bit image with a square odd aperture and replicated borders (cv2.medianBlur's border),
 * by Huang's running histogram: O(size) work per pixel instead of a sort.
 */
export function medianFilter(src: Uint8Array, width: number, height: number, size: number): Uint8Array {
  if (size <= 1) return src.slice();
  if (size % 2 === 0) throw new Error(`median filter size must be odd, got ${size}`);
  const r = size >> 1;
  const half = (size * size) >> 1; // the median is the (half+1)-th smallest value
  const out = new Uint8Array(width * height);
  const hist = new Int32Array(256);
  const clampX = (x: number) => (x < 0 ? 0 : x >= width ? width - 1 : x);
  const clampY = (y: number) => (y < 0 ? 0 : y >= height ? height - 1 : y);
  for (let y = 0; y < height; y++) {
    hist.fill(0);
    const rows: number[] = [];
    for (let dy = -r; dy <= r; dy++) rows.push(clampY(y + dy) * width);
    for (let dx = -r; dx <= r; dx++) {
      const cx = clampX(dx);
      for (const row of rows) hist[src[row + cx]]++;
    }
    // The running median m and the count of window values below m.
    let m = 0;
    let below = 0;
    while (below + hist[m] <= half) below += hist[m++];
    out[y * width] = m;
    for (let x = 1; x < width; x++) {
      const leaving = clampX(x - r - 1);
      const entering = clampX(x + r);
      for (const row of rows) {
        const a = src[row + leaving];
        hist[a]--;
        if (a < m) below--;
        const b = src[row + entering];
        hist[b]++;
        if (b < m) below++;
      }
      while (below > half) below -= hist[--m];
      while (below + hist[m] <= half) below += hist[m++];
      out[y * width + x] = m;
    }
  }
  return out;
}

/**
 * Otsu's threshold of an 8-bit histogram: the t maximising the between-class variance of {v ≤ t} and {v > t}
 * (cv2.threshold / skimage.filters.threshold_otsu convention: foreground is v > t). A constant image has no split:
 * its single value is returned, so nothing is above it.
 */
export function otsuThreshold(hist: ArrayLike<number>): number {
  let total = 0;
  let sum = 0;
  let lo = -1;
  let hi = -1;
  for (let v = 0; v < 256; v++) {
    const c = hist[v] ?? 0;
    total += c;
    sum += v * c;
    if (c > 0) {
      if (lo < 0) lo = v;
      hi = v;
    }
  }
  if (total === 0) return 0;
  if (lo === hi) return lo;
  let w0 = 0;
  let sum0 = 0;
  let best = lo;
  let bestVar = -1;
  for (let t = lo; t < hi; t++) {
    const c = hist[t] ?? 0;
    w0 += c;
    sum0 += t * c;
    const w1 = total - w0;
    if (w0 === 0 || w1 === 0) continue;
    const mean0 = sum0 / w0;
    const mean1 = (sum - sum0) / w1;
    const between = w0 * w1 * (mean0 - mean1) * (mean0 - mean1);
    if (between > bestVar) {
      bestVar = between;
      best = t;
    }
  }
  return best;
}

export function histogram(values: Uint8Array): Int32Array {
  const hist = new Int32Array(256);
  for (let i = 0; i < values.length; i++) hist[values[i]]++;
  return hist;
}

/**
 * Labels connected components of pixels equal to `value` (4- or 8-connected) and clears (sets to `1 - value`) those
 * whose area in pixels is below `minArea`; `skipBorder` keeps components that touch the image border (for holes:
 * background reaching the border is outside, not a hole).
 */
function removeSmallComponents(
  mask: Uint8Array,
  width: number,
  height: number,
  value: 0 | 1,
  connectivity: 4 | 8,
  minArea: number,
  skipBorder: boolean,
): void {
  if (minArea <= 1) return;
  const seen = new Uint8Array(width * height);
  const stack = new Int32Array(width * height);
  const members = new Int32Array(width * height);
  for (let start = 0; start < mask.length; start++) {
    if (seen[start] || mask[start] !== value) continue;
    let top = 0;
    let count = 0;
    let touchesBorder = false;
    stack[top++] = start;
    seen[start] = 1;
    while (top > 0) {
      const p = stack[--top];
      members[count++] = p;
      const x = p % width;
      const y = (p - x) / width;
      if (x === 0 || y === 0 || x === width - 1 || y === height - 1) touchesBorder = true;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          if (dx === 0 && dy === 0) continue;
          if (connectivity === 4 && dx !== 0 && dy !== 0) continue;
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const q = ny * width + nx;
          if (!seen[q] && mask[q] === value) {
            seen[q] = 1;
            stack[top++] = q;
          }
        }
      }
    }
    if (count < minArea && !(skipBorder && touchesBorder)) {
      for (let i = 0; i < count; i++) mask[members[i]] = 1 - value;
    }
  }
}

/** The pure part: tissue mask of an RGB(A) image that covers the slide at `downsample` level-0 px per pixel. */
export function detectTissueInImage(
  image: { data: Uint8Array; width: number; height: number; channels: 3 | 4 },
  downsample: number,
  options: TissueOptions = {},
): { mask: Uint8Array; threshold: number } {
  const { width, height } = image;
  const medianSize = options.medianSize ?? DEFAULTS.medianSize;
  const sat = medianFilter(saturation(image.data, width, height, image.channels), width, height, medianSize);
  const threshold =
    options.threshold ??
    Math.max(otsuThreshold(histogram(sat)), options.minThreshold ?? DEFAULTS.minThreshold);
  const mask = new Uint8Array(width * height);
  for (let i = 0; i < mask.length; i++) mask[i] = sat[i] > threshold ? 1 : 0;
  const pxArea = downsample * downsample;
  // Tissue is 8-connected, so background (and holes) is 4-connected: the two never cross each other.
  const holeArea =
    options.maxHoleArea !== undefined
      ? options.maxHoleArea / pxArea
      : (options.maxHolePixels ?? DEFAULTS.maxHolePixels);
  removeSmallComponents(mask, width, height, 0, 4, holeArea, true);
  const objectArea =
    options.minObjectArea !== undefined
      ? options.minObjectArea / pxArea
      : (options.minObjectPixels ?? DEFAULTS.minObjectPixels);
  removeSmallComponents(mask, width, height, 1, 8, objectArea, false);
  return { mask, threshold };
}

/** The level with the fewest pixels whose longest side still reaches maxSize (level 0 when none does). */
export function chooseTissueLevel(levels: Slide['levels'], maxSize: number): number {
  let chosen = 0;
  for (let i = 0; i < levels.length; i++) {
    if (Math.max(levels[i].width, levels[i].height) >= maxSize) chosen = i;
  }
  return chosen;
}

/** Above this many pixels a level is not read whole; the slide's own thumbnail() is used instead. */
const MAX_LEVEL_PIXELS = 64 * 1024 * 1024;

/** The low-resolution RGBA view tissue detection runs on, with the pyramid level it came from. */
export async function lowResolutionView(
  slide: Slide,
  maxSize: number,
): Promise<{ image: RGBAImage; level: number }> {
  const level = chooseTissueLevel(slide.levels, maxSize);
  const { width, height } = slide.levels[level];
  if (width * height > MAX_LEVEL_PIXELS) return { image: await slide.thumbnail(maxSize), level };
  const full = await slide.readRegion({ x: 0, y: 0, level, width, height });
  if (Math.max(width, height) <= maxSize) return { image: full, level };
  const { data, info } = await sharp(full.data, { raw: { width, height, channels: 4 } })
    .resize({ width: maxSize, height: maxSize, fit: 'inside', kernel: 'linear' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    image: {
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
    },
    level,
  };
}

/** Tissue mask of a slide, computed on a view whose longest side is about `maxSize` px. */
export async function detectTissue(slide: Slide, options: TissueOptions = {}): Promise<TissueMask> {
  return (await detectTissueWithView(slide, options)).tissue;
}

/** detectTissue, also returning the low-resolution RGBA view the mask was computed on (for overlays). */
export async function detectTissueWithView(
  slide: Slide,
  options: TissueOptions = {},
): Promise<{ tissue: TissueMask; view: RGBAImage }> {
  const maxSize = options.maxSize ?? DEFAULTS.maxSize;
  if (!(maxSize >= 16)) throw new Error(`tissue detection: maxSize must be ≥ 16, got ${maxSize}`);
  const { image, level } = await lowResolutionView(slide, maxSize);
  const slideWidth = slide.levels[0].width;
  const slideHeight = slide.levels[0].height;
  const downsample = slideWidth / image.width;
  const { mask, threshold } = detectTissueInImage({ ...image, channels: 4 }, downsample, options);
  return {
    tissue: {
      mask,
      width: image.width,
      height: image.height,
      downsample,
      threshold,
      slideWidth,
      slideHeight,
      level,
    },
    view: image,
  };
}

/** Fraction of mask pixels that are tissue. */
export function tissueFraction(tissue: Pick<TissueMask, 'mask'>): number {
  let n = 0;
  for (let i = 0; i < tissue.mask.length; i++) n += tissue.mask[i];
  return tissue.mask.length === 0 ? 0 : n / tissue.mask.length;
}

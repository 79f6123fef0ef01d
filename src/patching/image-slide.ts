/**
 * A `Slide` over an in-memory RGBA image, with a 2×-reduced pyramid built by sharp. Lets plain images (PNG, TIFF
 * tiles, MoNuSeg crops) go through the same samplers and patch stream as whole-slide images, and gives tests a slide
 * whose pixels are known exactly.
 */
import sharp from 'sharp';
import type { RegionAtMppRequest, RegionRequest, RGBAImage, Slide, SlideLevel } from '../slide/types.ts';

export interface ImageSlideOptions {
  source?: string;
  /** Micrometres per pixel of the image (null when unknown: mpp reads then fail). */
  mpp?: number | null;
  /** Number of pyramid levels (each half the previous size; default 1). */
  levels?: number;
}

/** OpenSlide's get_best_level_for_downsample over a list of level downsamples. */
export function bestLevelForDownsample(
  levels: readonly { downsample: number }[],
  downsample: number,
): number {
  if (downsample < levels[0].downsample) return 0;
  for (let i = 1; i < levels.length; i++) if (downsample < levels[i].downsample) return i - 1;
  return levels.length - 1;
}

async function resizeRgba(img: RGBAImage, width: number, height: number): Promise<RGBAImage> {
  const data = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 4 } })
    .resize({ width, height, fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height };
}

/** Copies a rectangle (level pixel coordinates, may extend outside) into a transparent RGBA buffer. */
function crop(img: RGBAImage, x: number, y: number, width: number, height: number): RGBAImage {
  const out = new Uint8Array(width * height * 4);
  const sx0 = Math.max(0, x);
  const sy0 = Math.max(0, y);
  const sx1 = Math.min(img.width, x + width);
  const sy1 = Math.min(img.height, y + height);
  for (let sy = sy0; sy < sy1; sy++) {
    const from = (sy * img.width + sx0) * 4;
    out.set(img.data.subarray(from, from + (sx1 - sx0) * 4), ((sy - y) * width + (sx0 - x)) * 4);
  }
  return { data: out, width, height };
}

export async function imageSlide(image: RGBAImage, options: ImageSlideOptions = {}): Promise<Slide> {
  if (image.data.length !== image.width * image.height * 4) {
    throw new Error(
      `imageSlide: RGBA data is ${image.data.length} bytes, expected ${image.width * image.height * 4}`,
    );
  }
  const source = options.source ?? '<image>';
  const pyramid: RGBAImage[] = [image];
  for (let i = 1; i < (options.levels ?? 1); i++) {
    const prev = pyramid[i - 1];
    const w = Math.max(1, Math.floor(prev.width / 2));
    const h = Math.max(1, Math.floor(prev.height / 2));
    pyramid.push(await resizeRgba(prev, w, h));
  }
  const levels: SlideLevel[] = pyramid.map((p) => ({
    width: p.width,
    height: p.height,
    downsample: (image.width / p.width + image.height / p.height) / 2,
    tileWidth: 0,
    tileHeight: 0,
  }));
  const mppValue = options.mpp ?? null;
  const mpp = mppValue === null ? null : { x: mppValue, y: mppValue };

  const readRegion = async (req: RegionRequest): Promise<RGBAImage> => {
    const level = levels[req.level];
    if (!level) throw new Error(`${source}: level ${req.level} does not exist (${levels.length} levels)`);
    const lx = Math.floor(req.x / level.downsample);
    const ly = Math.floor(req.y / level.downsample);
    return crop(pyramid[req.level], lx, ly, req.width, req.height);
  };

  const slide: Slide = {
    source,
    format: 'image',
    levels,
    mpp,
    objectivePower: null,
    properties: {},
    associatedImages: [],
    readAssociatedImage: async (name) => {
      throw new Error(`${source}: no associated image '${name}'`);
    },
    readRegion,
    async readRegionAtMpp(req: RegionAtMppRequest): Promise<RGBAImage> {
      if (!mpp) throw new Error(`${source}: the image has no mpp; read by level instead`);
      const downsample = req.mpp / mpp.x;
      const level = bestLevelForDownsample(levels, downsample);
      const factor = downsample / levels[level].downsample;
      const w = Math.max(1, Math.round(req.width * factor));
      const h = Math.max(1, Math.round(req.height * factor));
      const region = await readRegion({ x: req.x, y: req.y, level, width: w, height: h });
      return w === req.width && h === req.height ? region : resizeRgba(region, req.width, req.height);
    },
    getBestLevelForDownsample: (downsample) => bestLevelForDownsample(levels, downsample),
    async thumbnail(maxSize: number): Promise<RGBAImage> {
      const scale = Math.min(1, maxSize / Math.max(image.width, image.height));
      const w = Math.max(1, Math.round(image.width * scale));
      const h = Math.max(1, Math.round(image.height * scale));
      return scale === 1 ? image : resizeRgba(image, w, h);
    },
    close: async () => {},
  };
  return slide;
}

/** Decodes an image file (anything sharp reads) into an `imageSlide`. */
export async function openImageAsSlide(
  path: string,
  options: Omit<ImageSlideOptions, 'source'> = {},
): Promise<Slide> {
  let decoded: { data: Buffer; info: { width: number; height: number } };
  try {
    decoded = await sharp(path, { limitInputPixels: false })
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new Error(`${path}: cannot decode image (${(e as Error).message})`);
  }
  const { data, info } = decoded;
  return imageSlide(
    {
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
    },
    { ...options, source: path },
  );
}

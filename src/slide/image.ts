/** Flat PNG/JPEG images (decoded once by sharp) as a one-level PyramidSource. */
import { loadSharp } from '../core/sharp.ts';
import { SlideError } from './errors.ts';
import type { PyramidSource, RGBAImage, SlideLevel } from './types.ts';

/** Largest flat image decoded whole (8192², 256 MiB as RGBA): larger pictures belong in a tiled pyramid. */
export const MAX_FLAT_PIXELS = 2 ** 26;

export async function openFlatImage(source: string, bytes: Uint8Array): Promise<PyramidSource> {
  let data: Buffer;
  let info: { width: number; height: number };
  try {
    const sharp = await loadSharp();
    const meta = await sharp(bytes).metadata();
    if ((meta.width ?? 0) * (meta.height ?? 0) > MAX_FLAT_PIXELS) {
      throw new Error(
        `image of ${meta.width}x${meta.height} pixels is too large to decode whole (limit ${MAX_FLAT_PIXELS} pixels)`,
      );
    }
    // The header's size bounds the decode too (a stream that lies about it fails instead of growing).
    ({ data, info } = await sharp(bytes, { limitInputPixels: MAX_FLAT_PIXELS })
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true }));
  } catch (err) {
    throw new SlideError(source, `cannot decode image: ${err instanceof Error ? err.message : err}`);
  }
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const { width, height } = info;
  // Opaque RGBA as the contract asks.
  for (let i = 3; i < pixels.length; i += 4) pixels[i] = 255;
  const level: SlideLevel = { width, height, downsample: 1, tileWidth: 0, tileHeight: 0 };
  return {
    source,
    format: 'image',
    levels: [level],
    mpp: null,
    objectivePower: null,
    properties: {
      'openslide.level-count': '1',
      'openslide.level[0].width': String(width),
      'openslide.level[0].height': String(height),
      'openslide.level[0].downsample': '1',
    },
    associatedImages: [],
    async readAssociatedImage(name: string) {
      throw new SlideError(source, `no associated image '${name}' (has: none)`);
    },
    async readLevel(lvl: number, x: number, y: number, w: number, h: number): Promise<RGBAImage> {
      if (lvl !== 0) throw new SlideError(source, `no level ${lvl} (image has 1)`);
      const out = new Uint8Array(w * h * 4);
      for (let r = 0; r < h; r++) {
        const s = ((y + r) * width + x) * 4;
        out.set(pixels.subarray(s, s + w * 4), r * w * 4);
      }
      return { data: out, width: w, height: h };
    },
    async close() {},
  };
}

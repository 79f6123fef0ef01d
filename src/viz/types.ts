/** Image and label-map shapes the pictures work on. */
import type { RGBAImage } from '../slide/types.ts';

export type { RGBAImage };

/** Row-major class indices (or any single-channel values), one per pixel. */
export interface LabelMap {
  data: ArrayLike<number>;
  width: number;
  height: number;
}

/** Row-major pixels with 1 (grey), 3 (RGB) or 4 (RGBA) bytes each. */
export interface PixelImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Bytes per pixel of a PixelImage, from its size; throws when it is not 1, 3 or 4. */
export function channelsOf(img: PixelImage, what = 'image'): 1 | 3 | 4 {
  const px = img.width * img.height;
  const c = px > 0 ? img.data.length / px : 0;
  if (c !== 1 && c !== 3 && c !== 4) {
    throw new RangeError(
      `${what}: ${img.data.length} bytes is not 1, 3 or 4 per pixel of ${img.width}x${img.height}`,
    );
  }
  return c;
}

/** Converts grey/RGB/RGBA to RGBA (opaque where there was no alpha). */
export function toRGBA(img: PixelImage, what = 'image'): RGBAImage {
  const c = channelsOf(img, what);
  if (c === 4) return img;
  const n = img.width * img.height;
  const data = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) data[i * 4 + k] = img.data[i * c + (c === 1 ? 0 : k)]!;
    data[i * 4 + 3] = 255;
  }
  return { data, width: img.width, height: img.height };
}

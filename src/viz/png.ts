/** PNG writing for pictures (grey, RGB, RGBA) and class-index masks. */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import sharp from 'sharp';
import { channelsOf, type LabelMap, type PixelImage } from './types.ts';

/** Encodes grey (1 byte/pixel), RGB (3) or RGBA (4) pixels as PNG bytes. */
export async function encodePNG(img: PixelImage): Promise<Buffer> {
  const channels = channelsOf(img);
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels } });
  // A single channel must be kept grey explicitly; otherwise libvips writes it as sRGB.
  return (channels === 1 ? s.toColourspace('b-w') : s).png({ compressionLevel: 6 }).toBuffer();
}

/** Writes grey, RGB or RGBA pixels to a PNG file (creating its folder). */
export async function writePNG(path: string, img: PixelImage): Promise<void> {
  const png = await encodePNG(img);
  await mkdir(dirname(path), { recursive: true });
  try {
    await writeFile(path, png);
  } catch (e) {
    throw new Error(`${path}: cannot write PNG (${(e as Error).message})`);
  }
}

/** Writes a class-index map as an 8-bit grey PNG whose pixel values are the class indices. */
export async function writeMaskPNG(path: string, mask: LabelMap): Promise<void> {
  const n = mask.width * mask.height;
  if (mask.data.length !== n)
    throw new RangeError(`${path}: mask has ${mask.data.length} values for ${n} pixels`);
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = mask.data[i]!;
    if (!(Number.isInteger(v) && v >= 0 && v <= 255)) {
      throw new RangeError(`${path}: mask value ${v} at pixel ${i} does not fit an 8-bit PNG`);
    }
    data[i] = v;
  }
  await writePNG(path, { data, width: mask.width, height: mask.height });
}

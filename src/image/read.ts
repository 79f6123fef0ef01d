/**
 * Reads PNG, JPEG, TIFF (first page) and the other formats libvips decodes into 8-bit RGB, row-major HWC.
 *
 * Pixel values are taken as stored, like PIL's `Image.open(...).convert('RGB')` in the Python pipelines
 * users compare against: embedded ICC profiles and EXIF orientation are ignored. Two conversions are
 * explicit, chosen by options and reported in `notes` so callers can show them:
 * - alpha: dropped when every pixel is opaque; otherwise composited on white (the colour of glass
 *   background in slides), or refused with `alpha: 'refuse'`.
 * - 16-bit samples: scaled to 8 bits as round(v / 257) (65535 -> 255), or refused with `sixteenBit: 'refuse'`.
 * Grey images are expanded to RGB by repeating the channel.
 */

import { readFile } from 'node:fs/promises';
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { SlidesegError } from '../core/errors.ts';

export interface RGBImage {
  /** Row-major RGB, 3 bytes per pixel (HWC). */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface DecodedImage extends RGBImage {
  /** Container format as libvips names it: png, jpeg, tiff, webp... */
  format: string;
  /** Conversions applied (alpha composited, 16-bit scaled); empty when the pixels are as stored. */
  notes: string[];
}

export interface ReadImageOptions {
  /** What to do with a translucent alpha channel (an opaque one is always dropped). Default 'composite'. */
  alpha?: 'composite' | 'refuse';
  /** What to do with 16-bit samples. Default 'scale'. */
  sixteenBit?: 'scale' | 'refuse';
  /** Refuse (before decoding) images with more pixels than this; `ImageTooLargeError`. */
  maxPixels?: number;
}

/** Thrown before decoding when an image exceeds `maxPixels`. */
export class ImageTooLargeError extends SlidesegError {
  override name = 'ImageTooLargeError';
  override readonly code = 'image';
  constructor(
    readonly file: string,
    readonly width: number,
    readonly height: number,
    readonly maxPixels: number,
  ) {
    super(
      `${file}: ${width}x${height} image has more than the ${maxPixels.toLocaleString('en')} pixels allowed`,
    );
  }
}

/** Reads an image file; errors name the file and say what is wrong. */
export async function readImageRGB(path: string, options: ReadImageOptions = {}): Promise<DecodedImage> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : err.message;
    throw new Error(`${path}: cannot read image: ${why}`);
  }
  return decodeImageRGB(bytes, path, options);
}

/** Decodes an encoded image held in memory; `name` is used in error messages. */
export async function decodeImageRGB(
  bytes: Uint8Array,
  name = '<buffer>',
  options: ReadImageOptions = {},
): Promise<DecodedImage> {
  const open = () => sharp(bytes, { ignoreIcc: true, failOn: 'error' });
  let meta: Metadata;
  try {
    meta = await open().metadata();
  } catch (e) {
    throw new Error(`${name}: not a readable image (${firstLine(e)})`);
  }
  const format = meta.format ?? 'unknown';
  const notes: string[] = [];
  const sixteen = meta.depth === 'ushort';
  if (meta.depth && meta.depth !== 'uchar' && meta.depth !== 'ushort' && meta.depth !== 'char') {
    throw new Error(`${name}: ${meta.depth} samples are not supported (8- or 16-bit images only)`);
  }
  const [w, h] = [meta.width ?? 0, meta.height ?? 0];
  if (options.maxPixels != null && w * h > options.maxPixels) {
    throw new ImageTooLargeError(name, w, h, options.maxPixels);
  }
  if (sixteen && options.sixteenBit === 'refuse') {
    throw new Error(`${name}: 16-bit image refused; convert it to 8-bit first`);
  }

  let raw: { data: Buffer; info: OutputInfo };
  try {
    // Naming the 16-bit colourspace keeps libvips from converting the samples to the 8-bit range itself.
    raw = await open()
      .toColourspace(sixteen ? 'rgb16' : 'srgb')
      .raw({ depth: sixteen ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new Error(`${name}: cannot decode ${format} image (${firstLine(e)})`);
  }
  const { width, height, channels } = raw.info;
  const n = width * height;
  // Work on samples scaled to 0..255 floats only when 16-bit; otherwise keep bytes.
  const sample: (i: number) => number = sixteen
    ? (() => {
        const u16 = new Uint16Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength / 2);
        return (i: number) => u16[i]! / 257;
      })()
    : (i: number) => raw.data[i]!;
  if (sixteen) notes.push('16-bit samples scaled to 8 bits (round(v / 257))');

  const colour = channels >= 3 ? 3 : 1;
  const hasAlpha = channels === 2 || channels === 4;
  if (channels < 1 || channels > 4) throw new Error(`${name}: ${channels}-channel images are not supported`);
  let translucent = false;
  if (hasAlpha) {
    // sample() is on the 0..255 scale for 8- and 16-bit alike.
    for (let i = 0; i < n && !translucent; i++) if (sample(i * channels + colour) < 255) translucent = true;
    if (translucent && options.alpha === 'refuse') {
      throw new Error(`${name}: image has transparent pixels; remove the alpha channel or allow compositing`);
    }
    if (translucent) notes.push('transparent pixels composited on white');
  }

  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = translucent ? sample(i * channels + colour) / 255 : 1;
    for (let c = 0; c < 3; c++) {
      const v = sample(i * channels + (colour === 3 ? c : 0));
      data[i * 3 + c] = Math.round(translucent ? v * a + 255 * (1 - a) : v);
    }
  }
  return { data, width, height, format, notes };
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!;
}

/**
 * Model input preparation as Hugging Face's `SegformerImageProcessor` does it, driven by the same
 * `preprocessor_config.json`: optional resize, rescale (x · rescale_factor), normalise ((x − mean) / std),
 * giving NHWC float32 for the TF.js model.
 *
 * The arithmetic follows the reference's dtypes so values match `pixel_values` exactly: the rescale is done
 * in float64 and stored as float32, the normalisation in float32.
 * Resize (only when `do_resize`) uses libvips' bilinear kernel on the uint8 image, which antialiases on
 * downsampling as PIL's BILINEAR does; results may differ from PIL by a grey level.
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { IMAGENET_MEAN, IMAGENET_STD } from '../core/imagenet.ts';
import type { RGBImage } from './read.ts';

/** The fields of `preprocessor_config.json` that image preparation uses. */
export interface ImagePreprocessing {
  do_resize?: boolean;
  size?: { height?: number; width?: number; shortest_edge?: number } | number;
  do_rescale?: boolean;
  rescale_factor?: number;
  do_normalize?: boolean;
  image_mean?: number[] | number;
  image_std?: number[] | number;
}

/** NHWC float32 pixels, shape [1, height, width, 3]. */
export interface PixelValues {
  data: Float32Array;
  shape: [1, number, number, 3];
}

/** Reads and checks `preprocessor_config.json`. */
export async function readImagePreprocessing(path: string): Promise<ImagePreprocessing> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new Error(`${path}: cannot read the preprocessor config`);
  }
  let cfg: unknown;
  try {
    cfg = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
  }
  if (cfg == null || typeof cfg !== 'object' || Array.isArray(cfg)) {
    throw new Error(`${path}: expected a JSON object`);
  }
  return cfg as ImagePreprocessing;
}

function perChannel(v: number[] | number | undefined, fallback: readonly number[], what: string): number[] {
  const list = v == null ? fallback : typeof v === 'number' ? [v, v, v] : v;
  if (list.length !== 3 || !list.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new Error(`preprocessor config: ${what} must be 3 numbers, got ${JSON.stringify(v)}`);
  }
  return [...list];
}

/** The output size of a resize, or null when the image keeps its size. */
export function resizeTarget(cfg: ImagePreprocessing): { width: number; height: number } | null {
  if (!cfg.do_resize) return null;
  const size = typeof cfg.size === 'number' ? { height: cfg.size, width: cfg.size } : (cfg.size ?? {});
  if (size.height == null || size.width == null) {
    throw new Error(
      `preprocessor config: do_resize needs size {height, width}, got ${JSON.stringify(cfg.size)} (shortest_edge is not supported)`,
    );
  }
  return { width: size.width, height: size.height };
}

/** Resizes (when configured), rescales and normalises an RGB image to model input. */
export async function preprocessImage(image: RGBImage, cfg: ImagePreprocessing): Promise<PixelValues> {
  let { data, width, height } = image;
  const target = resizeTarget(cfg);
  if (target && (target.width !== width || target.height !== height)) {
    const resized = await sharp(data, { raw: { width, height, channels: 3 } })
      .resize(target.width, target.height, { fit: 'fill', kernel: 'linear' })
      .raw()
      .toBuffer();
    data = new Uint8Array(resized.buffer, resized.byteOffset, resized.byteLength);
    width = target.width;
    height = target.height;
  }
  const rescale = cfg.do_rescale === false ? null : (cfg.rescale_factor ?? 1 / 255);
  const normalise = cfg.do_normalize !== false;
  const mean = perChannel(cfg.image_mean, IMAGENET_MEAN, 'image_mean').map(Math.fround);
  const std = perChannel(cfg.image_std, IMAGENET_STD, 'image_std').map(Math.fround);
  const out = new Float32Array(width * height * 3);
  for (let i = 0; i < out.length; i++) {
    let v = rescale == null ? data[i]! : Math.fround(data[i]! * rescale);
    if (normalise) {
      const c = i % 3;
      v = Math.fround(Math.fround(v - mean[c]!) / std[c]!);
    }
    out[i] = v;
  }
  return { data: out, shape: [1, height, width, 3] };
}

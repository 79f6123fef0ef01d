/**
 * `preprocessor_config.json` of Hugging Face's SegformerImageProcessor, with its defaults for absent fields.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../core/imagenet.ts';

export interface PreprocessorConfig {
  do_resize: boolean;
  size: { height: number; width: number };
  do_rescale: boolean;
  rescale_factor: number;
  do_normalize: boolean;
  image_mean: number[];
  image_std: number[];
  do_reduce_labels: boolean;
  [extra: string]: unknown;
}

/** SegformerImageProcessor's defaults (ImageNet mean/std, 512×512, rescale 1/255). */
export function defaultPreprocessorConfig(): PreprocessorConfig {
  return {
    image_processor_type: 'SegformerImageProcessor',
    do_resize: true,
    size: { height: 512, width: 512 },
    resample: 2,
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [...IMAGENET_MEAN],
    image_std: [...IMAGENET_STD],
    do_reduce_labels: false,
  };
}

/**
 * What slideseg's trainers save with a model: the default preprocessing without resizing, because patches and
 * sliding-window tiles are fed at their own size.
 */
export function trainingPreprocessorConfig(): PreprocessorConfig {
  return { ...defaultPreprocessorConfig(), do_resize: false };
}

export const PREPROCESSOR_FILE = 'preprocessor_config.json';

export function normalizePreprocessorConfig(raw: unknown, source: string): PreprocessorConfig {
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error(`${source}: preprocessor config must be a JSON object`);
  }
  const c = { ...defaultPreprocessorConfig(), ...(raw as Record<string, unknown>) } as PreprocessorConfig;
  const fail = (why: string): never => {
    throw new Error(`${source}: invalid preprocessor config: ${why}`);
  };
  // Old configs spell do_reduce_labels as reduce_labels and size as an int.
  if (
    (raw as Record<string, unknown>).reduce_labels != null &&
    (raw as Record<string, unknown>).do_reduce_labels == null
  ) {
    c.do_reduce_labels = Boolean((raw as Record<string, unknown>).reduce_labels);
  }
  if (typeof c.size === 'number') c.size = { height: c.size, width: c.size };
  const size = c.size as { height?: unknown; width?: unknown };
  if (!Number.isInteger(size?.height) || !Number.isInteger(size?.width))
    fail(`size ${JSON.stringify(c.size)}`);
  for (const key of ['do_resize', 'do_rescale', 'do_normalize'] as const) {
    if (typeof c[key] !== 'boolean') fail(`${key} must be a boolean`);
  }
  if (typeof c.rescale_factor !== 'number' || !Number.isFinite(c.rescale_factor)) fail('rescale_factor');
  for (const key of ['image_mean', 'image_std'] as const) {
    const v = c[key];
    if (typeof v === 'number') c[key] = [v, v, v];
    else if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      fail(`${key} must be a number or a list of numbers`);
    }
  }
  if (c.image_std.some((s) => s === 0)) fail('image_std contains 0');
  return c;
}

export async function loadPreprocessorConfig(dir: string): Promise<PreprocessorConfig> {
  const path = join(dir, PREPROCESSOR_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return normalizePreprocessorConfig(raw, path);
}

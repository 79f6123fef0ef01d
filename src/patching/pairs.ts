/**
 * Training data from folders of images and masks matched by file name (the MoNuSeg layout:
 * `images/NAME.tif` + `masks/NAME.png`), loaded once into memory, split by image with a seed.
 */
import { readdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import sharp from 'sharp';
import type { Sample } from './augment.ts';
import { createRng, mixSeed } from './random.ts';

export interface NamedSample extends Sample {
  name: string;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.tif', '.tiff']);

async function readRGB(path: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  try {
    const { data, info } = await sharp(path)
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels, got ${info.channels}`);
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
    };
  } catch (e) {
    throw new Error(`${path}: cannot read image (${(e as Error).message})`);
  }
}

async function readLabels(path: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  try {
    const img = sharp(path);
    const meta = await img.metadata();
    if (meta.depth && meta.depth !== 'uchar') throw new Error(`mask must be 8-bit, got ${meta.depth}`);
    const { data, info } = await img.extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
    };
  } catch (e) {
    throw new Error(`${path}: cannot read mask (${(e as Error).message})`);
  }
}

/** Lists `images/` names that have a mask with the same base name in `masks/`. */
export async function listPairs(
  imagesDir: string,
  masksDir: string,
): Promise<{ name: string; image: string; mask: string }[]> {
  let images: string[];
  let masks: string[];
  try {
    images = (await readdir(imagesDir)).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort();
  } catch (e) {
    throw new Error(`${imagesDir}: cannot list images (${(e as NodeJS.ErrnoException).code})`);
  }
  try {
    masks = (await readdir(masksDir)).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()));
  } catch (e) {
    throw new Error(`${masksDir}: cannot list masks (${(e as NodeJS.ErrnoException).code})`);
  }
  const maskByName = new Map(masks.map((m) => [basename(m, extname(m)), m]));
  const pairs = [];
  for (const f of images) {
    const name = basename(f, extname(f));
    const m = maskByName.get(name);
    if (m) pairs.push({ name, image: join(imagesDir, f), mask: join(masksDir, m) });
  }
  if (pairs.length === 0)
    throw new Error(`${imagesDir}: no image has a mask of the same name in ${masksDir}`);
  return pairs;
}

export async function loadPair(
  p: { name: string; image: string; mask: string },
  numLabels: number,
  ignoreIndex: number,
): Promise<NamedSample> {
  const img = await readRGB(p.image);
  const m = await readLabels(p.mask);
  if (img.width !== m.width || img.height !== m.height) {
    throw new Error(
      `${p.mask}: mask is ${m.width}×${m.height} but image ${p.image} is ${img.width}×${img.height}`,
    );
  }
  for (let i = 0; i < m.data.length; i++) {
    const v = m.data[i]!;
    if (v >= numLabels && v !== ignoreIndex) {
      throw new Error(
        `${p.mask}: label ${v} at pixel ${i} is outside [0, ${numLabels}) and is not ignoreIndex ${ignoreIndex}`,
      );
    }
  }
  return { name: p.name, image: img.data, mask: m.data, width: img.width, height: img.height };
}

/**
 * A seeded subset of `fraction` of `names` (at least one), sorted; the generator is independent of the split's,
 * so the validation images stay the same whatever the fraction.
 */
export function fractionOf<T>(items: T[], fraction: number, seed: number, key: (t: T) => string): T[] {
  if (fraction >= 1) return items;
  const order = [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const rng = createRng(mixSeed(seed, 0xf4ac));
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const keep = order.slice(0, Math.max(1, Math.round(items.length * fraction)));
  return keep.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** Seeded split by image: a shuffled order, the last `valFraction` (at least one) for validation. */
export function splitNames(
  names: string[],
  valFraction: number,
  seed: number,
): { train: string[]; val: string[] } {
  const order = [...names].sort();
  const rng = createRng(seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const nVal = valFraction > 0 ? Math.max(1, Math.round(order.length * valFraction)) : 0;
  return { train: order.slice(0, order.length - nVal).sort(), val: order.slice(order.length - nVal).sort() };
}

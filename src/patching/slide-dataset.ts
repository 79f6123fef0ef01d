/**
 * Slides with annotation files as a labelled data set, for `train` (data.slides) and `evaluate --data`.
 *
 * One YAML/JSON file lists the slides (paths or URLs, relative to the file) with their Aperio XML or GeoJSON
 * annotations, the class of each annotation label, and where patches come from (mpp or level, size, sampler).
 * Patches and their label masks are read online from the slides; nothing is written to disk.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import sharp from 'sharp';
import { parse } from 'yaml';
import { readAnnotations } from '../annotations/read.ts';
import type { AnnotationSet } from '../annotations/types.ts';
import { openSlide } from '../slide/index.ts';
import type { Slide } from '../slide/types.ts';
import { createRng } from './random.ts';
import { createSampler, type Sampler } from './samplers.ts';
import { patchStream } from './stream.ts';

export interface SlideEntry {
  /** Slide path or URL (relative paths are relative to the data-set file). */
  slide: string;
  /** Aperio XML or GeoJSON; a slide without annotations is all `unannotated`. */
  annotations?: string;
  /**
   * Instead of annotations: a label image (PNG/TIFF, class index per pixel, 8-bit) the size of the slide's level 0,
   * e.g. the masks of an image data set used as slides. Read at other resolutions by nearest neighbour.
   */
  mask?: string;
  /** Fixed split; entries without one are split by `valFraction` with the seed. */
  split?: 'train' | 'val';
  /** Name in reports and split.json (default: the slide's file name without extension). */
  name?: string;
}

export interface SlideDataset {
  /** The file it was read from (errors name it). */
  source: string;
  slides: SlideEntry[];
  /** Annotation label → class index. Absent: every polygon is class 1. */
  classes?: Record<string, number>;
  /** Class of pixels inside no polygon (default 0; use the ignore index when only polygons are known). */
  unannotated: number;
  /** Target resolution: one mpp, several (multi-magnification training), or a pyramid level. */
  mpp?: number | number[];
  /** The µm/px of slides whose files carry none (e.g. plain TIFF/PNG images; MoNuSeg's 40× images are 0.25). */
  slideMpp?: number;
  level?: number;
  /** Patch side in pixels (default 512). */
  patchSize: number;
  /** Minimum tissue fraction of a patch on the tissue mask (default 0.5). */
  minTissue: number;
  /** 'foreground' (tissue only, default) or 'all' (every grid position / anywhere). */
  region: 'foreground' | 'all';
  /** Training patches drawn per training slide (default 32), validation/evaluation patches per slide (default 64). */
  patchesPerSlide: number;
  evalPatchesPerSlide: number;
  valFraction: number;
}

const DEFAULTS = {
  unannotated: 0,
  patchSize: 512,
  minTissue: 0.5,
  region: 'foreground' as const,
  patchesPerSlide: 32,
  evalPatchesPerSlide: 64,
  valFraction: 0.2,
};

function isRemote(p: string): boolean {
  return /^https?:\/\//i.test(p);
}

function resolvePath(base: string, p: string): string {
  return isRemote(p) || isAbsolute(p) ? p : resolve(base, p);
}

export function slideName(entry: SlideEntry): string {
  if (entry.name) return entry.name;
  const file = entry.slide.split(/[\\/]/).pop()!.split('?')[0]!;
  return basename(file, extname(file));
}

/** Checks a parsed data-set object and fills defaults; relative paths are resolved against `baseDir`. */
export function slideDatasetFrom(raw: unknown, source: string, baseDir: string): SlideDataset {
  const fail = (m: string): never => {
    throw new Error(`${source}: ${m}`);
  };
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) fail('expected a mapping with `slides:`');
  const o = raw as Record<string, unknown>;
  const known = new Set([
    'slides',
    'classes',
    'unannotated',
    'mpp',
    'level',
    'patchSize',
    'minTissue',
    'region',
    'patchesPerSlide',
    'evalPatchesPerSlide',
    'valFraction',
    'slideMpp',
  ]);
  for (const k of Object.keys(o))
    if (!known.has(k)) fail(`unknown key '${k}' (known: ${[...known].join(', ')})`);
  if (!Array.isArray(o.slides) || o.slides.length === 0) fail('`slides` must be a non-empty list');
  const slides = (o.slides as unknown[]).map((e, i): SlideEntry => {
    const entry = typeof e === 'string' ? { slide: e } : (e as Record<string, unknown>);
    if (entry == null || typeof entry !== 'object' || typeof entry.slide !== 'string' || entry.slide === '')
      fail(`slides[${i}]: needs a 'slide' path`);
    if (entry.annotations !== undefined && typeof entry.annotations !== 'string')
      fail(`slides[${i}]: 'annotations' must be a path`);
    if (entry.mask !== undefined && typeof entry.mask !== 'string')
      fail(`slides[${i}]: 'mask' must be a path`);
    if (entry.mask !== undefined && entry.annotations !== undefined)
      fail(`slides[${i}]: give 'annotations' or 'mask', not both`);
    if (entry.split !== undefined && entry.split !== 'train' && entry.split !== 'val')
      fail(`slides[${i}]: split must be 'train' or 'val', got ${JSON.stringify(entry.split)}`);
    return {
      slide: resolvePath(baseDir, entry.slide as string),
      annotations: entry.annotations ? resolvePath(baseDir, entry.annotations as string) : undefined,
      mask: entry.mask ? resolvePath(baseDir, entry.mask as string) : undefined,
      split: entry.split as SlideEntry['split'],
      name: typeof entry.name === 'string' ? entry.name : undefined,
    };
  });
  const names = slides.map(slideName);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) fail(`two slides are named '${dup}'; give them distinct 'name's`);
  const int = (k: string, v: unknown, min: number, max = Infinity): number => {
    if (!(Number.isInteger(v) && (v as number) >= min && (v as number) <= max))
      fail(`${k} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
    return v as number;
  };
  let classes: Record<string, number> | undefined;
  if (o.classes !== undefined) {
    if (o.classes == null || typeof o.classes !== 'object' || Array.isArray(o.classes))
      fail('`classes` must map annotation labels to class indices');
    classes = {};
    for (const [k, v] of Object.entries(o.classes as object)) classes[k] = int(`classes.${k}`, v, 0, 254);
  }
  const mpp = o.mpp;
  if (mpp !== undefined) {
    const list = Array.isArray(mpp) ? mpp : [mpp];
    if (list.length === 0 || !list.every((m) => typeof m === 'number' && m > 0))
      fail(`mpp must be a positive number or a list of them, got ${JSON.stringify(mpp)}`);
    if (o.level !== undefined) fail('give either mpp or level, not both');
  }
  if (o.slideMpp !== undefined && !(typeof o.slideMpp === 'number' && o.slideMpp > 0))
    fail(`slideMpp must be a positive number (µm/px), got ${JSON.stringify(o.slideMpp)}`);
  const region = o.region ?? DEFAULTS.region;
  if (region !== 'foreground' && region !== 'all') fail(`region must be 'foreground' or 'all'`);
  const minTissue = o.minTissue ?? DEFAULTS.minTissue;
  if (!(typeof minTissue === 'number' && minTissue >= 0 && minTissue <= 1))
    fail('minTissue must be in [0, 1]');
  const valFraction = o.valFraction ?? DEFAULTS.valFraction;
  if (!(typeof valFraction === 'number' && valFraction >= 0 && valFraction < 1))
    fail('valFraction must be in [0, 1)');
  return {
    source,
    slides,
    classes,
    unannotated: int('unannotated', o.unannotated ?? DEFAULTS.unannotated, 0, 255),
    mpp: mpp as SlideDataset['mpp'],
    slideMpp: o.slideMpp as number | undefined,
    level: o.level === undefined ? undefined : int('level', o.level, 0),
    patchSize: int('patchSize', o.patchSize ?? DEFAULTS.patchSize, 32),
    minTissue: minTissue as number,
    region: region as SlideDataset['region'],
    patchesPerSlide: int('patchesPerSlide', o.patchesPerSlide ?? DEFAULTS.patchesPerSlide, 1),
    evalPatchesPerSlide: int('evalPatchesPerSlide', o.evalPatchesPerSlide ?? DEFAULTS.evalPatchesPerSlide, 1),
    valFraction: valFraction as number,
  };
}

/** Reads a slide data-set file (YAML or JSON). */
export async function readSlideDataset(path: string): Promise<SlideDataset> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read slide data set (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid YAML/JSON (${(e as Error).message.split('\n')[0]})`);
  }
  return slideDatasetFrom(raw, path, dirname(resolve(path)));
}

/** Seeded split by slide: fixed `split`s kept, the rest shuffled and the last valFraction (≥ 1 if any) validated. */
export function splitSlides(ds: SlideDataset, seed: number): { train: SlideEntry[]; val: SlideEntry[] } {
  const fixedVal = ds.slides.filter((s) => s.split === 'val');
  const free = ds.slides.filter((s) => !s.split).sort((a, b) => slideName(a).localeCompare(slideName(b)));
  const rng = createRng(seed);
  for (let i = free.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [free[i], free[j]] = [free[j]!, free[i]!];
  }
  const nVal =
    ds.valFraction > 0 && free.length > 1 && fixedVal.length === 0
      ? Math.max(1, Math.round(free.length * ds.valFraction))
      : Math.round(free.length * ds.valFraction);
  const val = [...fixedVal, ...free.slice(free.length - nVal)];
  const train = [...ds.slides.filter((s) => s.split === 'train'), ...free.slice(0, free.length - nVal)];
  const byName = (a: SlideEntry, b: SlideEntry) => slideName(a).localeCompare(slideName(b));
  return { train: train.sort(byName), val: val.sort(byName) };
}

/** An image patch with its label mask, from a slide of the data set. */
export interface LabelledPatch {
  /** `<slide name>@x,y` (level-0 corner). */
  name: string;
  slide: string;
  x: number;
  y: number;
  mpp: number | null;
  image: Uint8Array;
  mask: Uint8Array;
  width: number;
  height: number;
}

export async function loadAnnotations(ds: SlideDataset, entry: SlideEntry): Promise<AnnotationSet | null> {
  if (!entry.annotations) return null;
  const set = await readAnnotations(entry.annotations);
  if (ds.classes) {
    const unknown = [...new Set(set.polygons.map((p) => p.label))].filter((l) => !(l in ds.classes!));
    if (unknown.length > 0) {
      throw new Error(
        `${entry.annotations}: annotation label(s) ${unknown.map((l) => JSON.stringify(l)).join(', ')} ` +
          `have no class in ${ds.source} (classes: ${Object.keys(ds.classes).join(', ') || 'none'})`,
      );
    }
  }
  return set;
}

/**
 * Opens a data set's slide; a slide whose file has no resolution gets the data set's `slideMpp` (its readers
 * then read at any mpp as for a scanner's slide).
 */
export async function openDatasetSlide(ds: SlideDataset, entry: SlideEntry): Promise<Slide> {
  let slide: Slide;
  try {
    slide = await openSlide(entry.slide);
  } catch (e) {
    throw new Error(`${ds.source}: slide ${entry.slide}: ${(e as Error).message}`);
  }
  if (slide.mpp || ds.slideMpp === undefined) return slide;
  // The reader's methods stay the slide's own; only the resolution they see is the assumed one.
  return Object.create(slide, {
    mpp: { value: { x: ds.slideMpp, y: ds.slideMpp }, enumerable: true },
  }) as Slide;
}

/** A level-0 label image (class index per pixel). */
export interface LabelImage {
  source: string;
  data: Uint8Array;
  width: number;
  height: number;
}

/** The entry's `mask` label image, or null when it has none. */
export async function loadLabelImage(entry: SlideEntry): Promise<LabelImage | null> {
  if (!entry.mask) return null;
  try {
    const img = sharp(entry.mask);
    const meta = await img.metadata();
    if (meta.depth && meta.depth !== 'uchar')
      throw new Error(`the label image must be 8-bit, got ${meta.depth}`);
    const { data, info } = await img.extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    return { source: entry.mask, data: new Uint8Array(data), width: info.width, height: info.height };
  } catch (e) {
    throw new Error(`${entry.mask}: cannot read label image (${(e as Error).message})`);
  }
}

/**
 * Labels of a patch (level-0 corner x, y; `downsample` level-0 px per output px) from a level-0 label image by
 * nearest neighbour (the pixel under each output pixel's centre); `fill` outside the image.
 */
export function labelsAt(
  labels: LabelImage,
  p: { x: number; y: number; width: number; height: number; downsample: number },
  fill: number,
): Uint8Array {
  const out = new Uint8Array(p.width * p.height).fill(fill);
  for (let j = 0; j < p.height; j++) {
    const sy = Math.floor(p.y + (j + 0.5) * p.downsample);
    if (sy < 0 || sy >= labels.height) continue;
    for (let i = 0; i < p.width; i++) {
      const sx = Math.floor(p.x + (i + 0.5) * p.downsample);
      if (sx >= 0 && sx < labels.width) out[j * p.width + i] = labels.data[sy * labels.width + sx]!;
    }
  }
  return out;
}

/**
 * Rejects a data set whose labels a `numLabels`-class model cannot take: every class of `classes` (or 1 without a
 * map) and `unannotated` must be below numLabels or be the ignore index. Masks hold only these values.
 */
export function checkSlideLabels(ds: SlideDataset, numLabels: number, ignoreIndex: number): void {
  const labels: [string, number][] = [
    ...(ds.classes ? Object.entries(ds.classes) : [['every polygon', 1] as [string, number]]),
    ['unannotated', ds.unannotated],
  ];
  for (const [what, v] of labels) {
    if (v >= numLabels && v !== ignoreIndex) {
      throw new Error(
        `${ds.source}: ${what} is class ${v}, outside [0, ${numLabels}) and not the ignore index ${ignoreIndex}`,
      );
    }
  }
}

function samplerFor(ds: SlideDataset, purpose: 'train' | 'eval'): Sampler {
  const fg = ds.region === 'foreground';
  const opts = { size: ds.patchSize, minTissue: ds.minTissue, level: ds.level };
  const mpps = Array.isArray(ds.mpp) ? ds.mpp : ds.mpp !== undefined ? [ds.mpp] : undefined;
  if (purpose === 'train' && mpps && mpps.length > 1)
    return createSampler('multi-magnification', { ...opts, mpps, foreground: fg });
  const res = { ...opts, mpp: mpps?.[0] };
  if (purpose === 'train') return createSampler(fg ? 'foreground-random' : 'random', res);
  return createSampler(fg ? 'foreground-grid' : 'grid', res);
}

/**
 * Labelled patches of `entries`: for training, `patchesPerSlide` random patches per slide (at one of the mpps);
 * for evaluation, grid patches (at the first mpp), at most `evalPatchesPerSlide` per slide (a seeded random
 * subset of the grid when there are more).
 */
export async function* labelledPatches(
  ds: SlideDataset,
  entries: SlideEntry[],
  purpose: 'train' | 'eval',
  seed = 0,
): AsyncGenerator<LabelledPatch, void, undefined> {
  for (const [i, entry] of entries.entries()) {
    const annotations = await loadAnnotations(ds, entry);
    const labels = await loadLabelImage(entry);
    const slide = await openDatasetSlide(ds, entry);
    try {
      const sampler = samplerFor(ds, purpose);
      const stream = patchStream({
        slides: [slide],
        sampler: purpose === 'eval' ? thinned(sampler, ds.evalPatchesPerSlide, seed * 1009 + i) : sampler,
        count: purpose === 'train' ? ds.patchesPerSlide : undefined,
        seed: seed * 1009 + i,
        annotations: annotations ?? undefined,
        classMap: ds.classes,
        background: ds.unannotated,
      });
      const name = slideName(entry);
      for await (const p of stream) {
        yield {
          name: `${name}@${p.x},${p.y}`,
          slide: name,
          x: p.x,
          y: p.y,
          mpp: p.mpp,
          image: p.image,
          mask: labels
            ? labelsAt(labels, p, ds.unannotated)
            : (p.mask ?? new Uint8Array(p.width * p.height).fill(ds.unannotated)),
          width: p.width,
          height: p.height,
        };
      }
    } finally {
      await slide.close();
    }
  }
}

/** A finite sampler thinned to at most `max` specs: a seeded random subset of its list, kept in list order. */
function thinned(sampler: Sampler, max: number, seed: number): Sampler {
  return {
    ...sampler,
    *specs(ctx) {
      const all = [...iterate(sampler.specs(ctx))];
      if (all.length <= max) {
        yield* all;
        return;
      }
      const rng = createRng(seed);
      const order = all.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      for (const i of order.slice(0, max).sort((a, b) => a - b)) yield all[i]!;
    },
  };
}

function* iterate<T>(it: Iterator<T>): Generator<T> {
  for (let r = it.next(); !r.done; r = it.next()) yield r.value;
}

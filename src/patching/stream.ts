/**
 * The online patch stream: specs come from a seeded sampler in a fixed order, reads run in parallel (at most
 * `concurrency` in flight, at most `prefetch` read ahead of the consumer), and patches are yielded in spec order,
 * so the sequence depends on the seed only, never on which read finishes first. Nothing touches the disk.
 */
import { rasterize } from '../annotations/rasterize.ts';
import type { AnnotationSet } from '../annotations/types.ts';
import { type OpenSlideOptions, openSlide } from '../slide/index.ts';
import type { RGBAImage, Slide } from '../slide/types.ts';
import { TissueCoverage } from './coverage.ts';
import { createRng, type Rng } from './random.ts';
import type { PatchSpec, Sampler } from './samplers.ts';
import { detectTissue, type TissueMask, type TissueOptions } from './tissue.ts';

export interface Patch {
  /** HWC RGB, row-major; pixels outside the slide are white. */
  image: Uint8Array;
  width: number;
  height: number;
  /** The slide's source. */
  slide: string;
  /** Index of the slide in `slides`. */
  slideIndex: number;
  x: number;
  y: number;
  level: number;
  mpp: number | null;
  downsample: number;
  /** Label map aligned with the image, when annotations were given. */
  mask?: Uint8Array;
}

export interface PatchStreamOptions {
  /** Slides, or paths opened with the slide readers (and closed when the stream ends). */
  slides: Array<Slide | string>;
  /** Options for slides opened from paths (e.g. decode workers). */
  open?: OpenSlideOptions;
  sampler: Sampler;
  /** Number of patches; optional for finite samplers (all their patches). */
  count?: number;
  /** Patches read ahead of the consumer (default 8). */
  prefetch?: number;
  /** Reads in flight at once (default 4, at most prefetch). */
  concurrency?: number;
  seed?: number;
  /**
   * How patches are spread over slides: 'random' picks a slide per patch (default for random samplers),
   * 'sequential' exhausts each slide's sampler in turn (default for grids).
   */
  slideOrder?: 'random' | 'sequential';
  /** One annotation set per slide (null where a slide has none), or one set for a single slide. */
  annotations?: AnnotationSet | Array<AnnotationSet | null | undefined>;
  /** Class name → label value for the masks (default: every polygon is 1). */
  classMap?: Readonly<Record<string, number>> | ReadonlyMap<string, number>;
  /** Label of mask pixels inside no polygon (default 0). */
  background?: number;
  /** Options for the tissue masks foreground samplers need. */
  tissue?: TissueOptions;
  /** Precomputed tissue masks, per slide (skips detection). */
  tissueMasks?: Array<TissueMask | null | undefined>;
}

interface SlideState {
  slide: Slide;
  specs: Iterator<PatchSpec>;
  exhausted: boolean;
}

/** RGBA (un-premultiplied, as OpenSlide returns) composited over white into packed RGB. */
export function rgbaToRgbOnWhite(rgba: RGBAImage): Uint8Array {
  const n = rgba.width * rgba.height;
  const out = new Uint8Array(n * 3);
  const d = rgba.data;
  for (let i = 0, p = 0, q = 0; i < n; i++, p += 4, q += 3) {
    const a = d[p + 3];
    if (a === 255) {
      out[q] = d[p];
      out[q + 1] = d[p + 1];
      out[q + 2] = d[p + 2];
    } else {
      const k = 255 - a;
      out[q] = Math.round((d[p] * a + 255 * k) / 255);
      out[q + 1] = Math.round((d[p + 1] * a + 255 * k) / 255);
      out[q + 2] = Math.round((d[p + 2] * a + 255 * k) / 255);
    }
  }
  return out;
}

/** Reads a spec: directly at its level, or resampled when its resolution falls between levels. */
export function readPatch(slide: Slide, spec: PatchSpec): Promise<RGBAImage> {
  const native = slide.levels[spec.level].downsample;
  if (spec.mpp !== null && Math.abs(spec.downsample / native - 1) > 1e-3) {
    return slide.readRegionAtMpp({
      x: spec.x,
      y: spec.y,
      mpp: spec.mpp,
      width: spec.width,
      height: spec.height,
    });
  }
  return slide.readRegion({
    x: spec.x,
    y: spec.y,
    level: spec.level,
    width: spec.width,
    height: spec.height,
  });
}

/** A counting semaphore: run(fn) waits for a free slot. */
function limiter(slots: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let free = slots;
  const waiting: Array<() => void> = [];
  return async (fn) => {
    if (free > 0) free--;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  };
}

async function openSlides(
  inputs: Array<Slide | string>,
  options?: OpenSlideOptions,
): Promise<{ slides: Slide[]; opened: Slide[] }> {
  const slides: Slide[] = [];
  const opened: Slide[] = [];
  for (const input of inputs) {
    if (typeof input !== 'string') {
      slides.push(input);
      continue;
    }
    try {
      const slide = await openSlide(input, options);
      slides.push(slide);
      opened.push(slide);
    } catch (err) {
      await Promise.allSettled(opened.map((s) => s.close()));
      throw err;
    }
  }
  return { slides, opened };
}

/** Opens a path with the project's slide readers (SVS/TIFF, OME-Zarr, PNG/JPEG). */
export function openSlideByPath(path: string, options?: OpenSlideOptions): Promise<Slide> {
  return openSlide(path, options);
}

function positiveInteger(name: string, value: number): number {
  if (!(Number.isInteger(value) && value > 0))
    throw new Error(`patchStream: ${name} must be a positive integer, got ${value}`);
  return value;
}

/** The stream's settings, checked: one-line errors for a bad count, prefetch or annotations. */
function streamSettings(options: PatchStreamOptions) {
  const { sampler } = options;
  if (!Array.isArray(options.slides) || options.slides.length === 0)
    throw new Error('patchStream: no slides given');
  if (options.count === undefined && !sampler.finite) {
    throw new Error(`patchStream: the ${sampler.name} sampler never ends; give a count`);
  }
  const count = options.count === undefined ? Infinity : options.count;
  if (count !== Infinity && !(Number.isInteger(count) && count >= 0)) {
    throw new Error(`patchStream: count must be a non-negative integer, got ${count}`);
  }
  const prefetch = positiveInteger('prefetch', options.prefetch ?? 8);
  const concurrency = Math.min(positiveInteger('concurrency', options.concurrency ?? 4), prefetch);
  const order = options.slideOrder ?? (sampler.finite ? 'sequential' : 'random');
  const perSlideAnnotations = Array.isArray(options.annotations)
    ? options.annotations
    : options.annotations
      ? [options.annotations]
      : [];
  if (options.annotations && !Array.isArray(options.annotations) && options.slides.length > 1) {
    throw new Error('patchStream: with several slides, give annotations as an array (one entry per slide)');
  }
  return { count, prefetch, concurrency, seed: options.seed ?? 0, order, perSlideAnnotations };
}

/**
 * The (slide, spec) pairs of the stream in its fixed order: slide after slide (sequential) or a seeded random slide
 * each time; each slide's sampler is started (tissue detected) on first use. Null when every slide is exhausted.
 */
function specSequence(
  slides: Slide[],
  options: PatchStreamOptions,
  order: 'sequential' | 'random',
  seed: number,
): () => Promise<{ index: number; spec: PatchSpec } | null> {
  const { sampler } = options;
  const root = createRng(seed);
  const slidePicker: Rng = root.fork(-1);
  const states: Array<SlideState | undefined> = [];
  const stateOf = async (i: number): Promise<SlideState> => {
    const existing = states[i];
    if (existing) return existing;
    const slide = slides[i];
    let tissue: TissueCoverage | undefined;
    if (sampler.needsTissue) {
      const mask = options.tissueMasks?.[i] ?? (await detectTissue(slide, options.tissue));
      tissue = new TissueCoverage(mask);
    }
    const state = { slide, specs: sampler.specs({ slide, rng: root.fork(i), tissue }), exhausted: false };
    states[i] = state;
    return state;
  };
  let cursor = 0;
  return async () => {
    while (true) {
      let index: number;
      if (order === 'sequential') {
        if (cursor >= slides.length) return null;
        index = cursor;
      } else {
        const live = slides.map((_, i) => i).filter((i) => !states[i]?.exhausted);
        if (live.length === 0) return null;
        index = live[slidePicker.int(live.length)];
      }
      const state = await stateOf(index);
      const step = state.specs.next();
      if (!step.done) return { index, spec: step.value };
      state.exhausted = true;
      if (order === 'sequential') cursor++;
    }
  };
}

/** One patch: the pixels (RGB on white) and, with annotations, the mask rasterised on the same grid. */
function patchOf(
  slide: Slide,
  index: number,
  spec: PatchSpec,
  rgba: RGBAImage,
  annotations: AnnotationSet | null | undefined,
  options: PatchStreamOptions,
): Patch {
  if (rgba.width !== spec.width || rgba.height !== spec.height) {
    throw new Error(
      `${slide.source}: read ${rgba.width}x${rgba.height} for a ${spec.width}x${spec.height} patch`,
    );
  }
  const patch: Patch = {
    image: rgbaToRgbOnWhite(rgba),
    width: spec.width,
    height: spec.height,
    slide: slide.source,
    slideIndex: index,
    x: spec.x,
    y: spec.y,
    level: spec.level,
    mpp: spec.mpp,
    downsample: spec.downsample,
  };
  if (annotations) {
    patch.mask = rasterize(
      annotations,
      {
        x: spec.x,
        y: spec.y,
        width: spec.width,
        height: spec.height,
        downsample: spec.downsample,
        classMap: options.classMap,
      },
      new Uint8Array(spec.width * spec.height).fill(options.background ?? 0),
    );
  }
  return patch;
}

export async function* patchStream(options: PatchStreamOptions): AsyncGenerator<Patch, void, undefined> {
  const { count, prefetch, concurrency, seed, order, perSlideAnnotations } = streamSettings(options);
  const { slides, opened } = await openSlides(options.slides, options.open);
  const nextSpec = specSequence(slides, options, order, seed);
  const limit = limiter(concurrency);
  const load = async (index: number, spec: PatchSpec): Promise<Patch> => {
    const rgba = await limit(() => readPatch(slides[index], spec));
    return patchOf(slides[index], index, spec, rgba, perSlideAnnotations[index], options);
  };

  const queue: Promise<Patch>[] = [];
  let issued = 0;
  let done = false;
  /** Starts reads until `prefetch` patches are pending (or the stream has no more). */
  const refill = async () => {
    while (!done && queue.length < prefetch && issued < count) {
      const next = await nextSpec();
      if (!next) {
        done = true;
        break;
      }
      issued++;
      const pending = load(next.index, next.spec);
      // Failures surface when the consumer reaches this patch; until then they must not count as unhandled.
      pending.catch(() => {});
      queue.push(pending);
    }
  };
  try {
    await refill();
    while (true) {
      const head = queue.shift();
      if (!head) return;
      const patch = await head;
      // While the consumer works on this patch, the next `prefetch` patches are being read.
      await refill();
      yield patch;
    }
  } finally {
    // Let reads already started finish before their slides are closed.
    await Promise.allSettled(queue);
    await Promise.allSettled(opened.map((s) => s.close()));
  }
}

/**
 * Patch samplers: where to read patches from a slide. Each yields `PatchSpec`s (level-0 corner, the level to read,
 * the output resolution) from a seeded generator, so the same seed gives the same patches.
 */
import type { Slide } from '../slide/types.ts';
import type { TissueCoverage } from './coverage.ts';
import { bestLevelForDownsample } from './image-slide.ts';
import { createRng, mixSeed, type Rng } from './random.ts';

export interface PatchSpec {
  /** Top-left corner in level-0 pixels. */
  x: number;
  y: number;
  /** Pyramid level the pixels come from. */
  level: number;
  /** Micrometres per output pixel, or null when the slide has no mpp. */
  mpp: number | null;
  /** Output size in pixels. */
  width: number;
  height: number;
  /** Level-0 pixels per output pixel (the level's downsample, or mpp / slide mpp for mpp reads). */
  downsample: number;
}

/** The part of a slide samplers look at. */
export type SlideGeometry = Pick<Slide, 'source' | 'levels' | 'mpp'>;

export interface SamplerContext {
  slide: SlideGeometry;
  rng: Rng;
  /** Present when the sampler `needsTissue`. */
  tissue?: TissueCoverage;
}

export interface Sampler {
  readonly name: string;
  /** Whether the stream must compute a tissue mask for each slide. */
  readonly needsTissue: boolean;
  /** Finite samplers (grids) end; random ones go on until the stream's count is reached. */
  readonly finite: boolean;
  specs(ctx: SamplerContext): Iterator<PatchSpec>;
}

/** Output resolution: a pyramid level, or a target mpp (needs the slide's mpp). */
export interface Resolution {
  level?: number;
  mpp?: number;
}

export interface PatchSize {
  /** Patch side in output pixels, or [width, height] (default 256). */
  size?: number | [number, number];
}

interface Resolved {
  level: number;
  downsample: number;
  mpp: number | null;
  width: number;
  height: number;
}

function patchSize(size: PatchSize['size']): [number, number] {
  const [w, h] = Array.isArray(size) ? size : [size ?? 256, size ?? 256];
  if (!(Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0)) {
    throw new Error(`patch size must be positive integers, got ${JSON.stringify(size)}`);
  }
  return [w, h];
}

/** Level, downsample and mpp of patches read at `res` from `slide`. */
export function resolveResolution(slide: SlideGeometry, res: Resolution, size: PatchSize['size']): Resolved {
  const [width, height] = patchSize(size);
  if (res.mpp !== undefined) {
    if (!slide.mpp)
      throw new Error(`${slide.source}: the slide has no mpp; sample by level instead of --mpp`);
    if (!(res.mpp > 0)) throw new Error(`mpp must be positive, got ${res.mpp}`);
    const downsample = res.mpp / slide.mpp.x;
    return {
      level: bestLevelForDownsample(slide.levels, downsample),
      downsample,
      mpp: res.mpp,
      width,
      height,
    };
  }
  const level = res.level ?? 0;
  const info = slide.levels[level];
  if (!info || !Number.isInteger(level)) {
    throw new Error(`${slide.source}: level ${level} does not exist (${slide.levels.length} levels)`);
  }
  const mpp = slide.mpp ? slide.mpp.x * info.downsample : null;
  return { level, downsample: info.downsample, mpp, width, height };
}

function spec(r: Resolved, x: number, y: number): PatchSpec {
  return { x, y, level: r.level, mpp: r.mpp, width: r.width, height: r.height, downsample: r.downsample };
}

/** Level-0 footprint of a patch, checked to fit in the slide. */
function footprint(slide: SlideGeometry, r: Resolved): [number, number] {
  const fw = r.width * r.downsample;
  const fh = r.height * r.downsample;
  const { width, height } = slide.levels[0];
  if (fw > width || fh > height) {
    throw new Error(
      `${slide.source}: a ${r.width}x${r.height} patch at ${r.downsample.toFixed(3)}x downsample ` +
        `(${Math.round(fw)}x${Math.round(fh)} level-0 px) does not fit in the ${width}x${height} slide`,
    );
  }
  return [fw, fh];
}

function requireTissue(ctx: SamplerContext, name: string): TissueCoverage {
  if (!ctx.tissue) throw new Error(`${name} sampler needs a tissue mask for ${ctx.slide.source}`);
  return ctx.tissue;
}

function checkFraction(name: string, value: number): number {
  if (!(value >= 0 && value <= 1)) throw new Error(`${name} must be in [0, 1], got ${value}`);
  return value;
}

export interface GridOptions extends Resolution, PatchSize {
  /** Overlap between neighbouring patches in output pixels (default 0). */
  overlap?: number;
  /** Also emit the last row/column that sticks out of the slide (read as white), so the grid covers it all. */
  includePartial?: boolean;
}

function* gridPositions(slide: SlideGeometry, r: Resolved, opts: GridOptions): Generator<[number, number]> {
  const overlap = opts.overlap ?? 0;
  if (!(Number.isInteger(overlap) && overlap >= 0 && overlap < Math.min(r.width, r.height))) {
    throw new Error(`overlap must be an integer in [0, patch size), got ${overlap}`);
  }
  const [fw, fh] = opts.includePartial
    ? [r.width * r.downsample, r.height * r.downsample]
    : footprint(slide, r);
  const sx = (r.width - overlap) * r.downsample;
  const sy = (r.height - overlap) * r.downsample;
  const { width, height } = slide.levels[0];
  const fits = (start: number, size: number, total: number) =>
    opts.includePartial ? start < total : start + size <= total + 1e-6;
  for (let j = 0; fits(j * sy, fh, height); j++) {
    for (let i = 0; fits(i * sx, fw, width); i++) yield [Math.round(i * sx), Math.round(j * sy)];
  }
}

/** Every patch of a regular grid, row by row. */
export function gridSampler(opts: GridOptions = {}): Sampler {
  return {
    name: 'grid',
    needsTissue: false,
    finite: true,
    *specs(ctx) {
      const r = resolveResolution(ctx.slide, opts, opts.size);
      for (const [x, y] of gridPositions(ctx.slide, r, opts)) yield spec(r, x, y);
    },
  };
}

export interface ForegroundOptions {
  /** Minimum tissue fraction of a patch, measured on the tissue mask (default 0.5). */
  minTissue?: number;
}

/** Grid patches whose tissue fraction reaches minTissue. */
export function foregroundGridSampler(opts: GridOptions & ForegroundOptions = {}): Sampler {
  const minTissue = checkFraction('minTissue', opts.minTissue ?? 0.5);
  return {
    name: 'foreground-grid',
    needsTissue: true,
    finite: true,
    *specs(ctx) {
      const tissue = requireTissue(ctx, 'foreground-grid');
      const r = resolveResolution(ctx.slide, opts, opts.size);
      for (const [x, y] of gridPositions(ctx.slide, r, opts)) {
        if (tissue.fraction(x, y, r.width * r.downsample, r.height * r.downsample) >= minTissue)
          yield spec(r, x, y);
      }
    },
  };
}

function uniformPosition(ctx: SamplerContext, r: Resolved): PatchSpec {
  const [fw, fh] = footprint(ctx.slide, r);
  const { width, height } = ctx.slide.levels[0];
  const x = Math.min(Math.floor(ctx.rng.uniform(0, width - fw + 1)), Math.floor(width - fw));
  const y = Math.min(Math.floor(ctx.rng.uniform(0, height - fh + 1)), Math.floor(height - fh));
  return spec(r, x, y);
}

/** Patches anywhere in the slide, uniformly. */
export function randomSampler(opts: Resolution & PatchSize = {}): Sampler {
  return {
    name: 'random',
    needsTissue: false,
    finite: false,
    *specs(ctx) {
      const r = resolveResolution(ctx.slide, opts, opts.size);
      while (true) yield uniformPosition(ctx, r);
    },
  };
}

export interface ForegroundRandomOptions extends ForegroundOptions {
  /** Candidates tried per patch before giving up with an error (default 1000). */
  maxTries?: number;
}

/**
 * A patch centred on a uniformly chosen point of tissue (a random tissue mask pixel, then a random point inside it),
 * kept inside the slide, accepted when its tissue fraction reaches minTissue.
 */
function foregroundPosition(
  ctx: SamplerContext,
  r: Resolved,
  opts: ForegroundRandomOptions,
  name: string,
): PatchSpec {
  const tissue = requireTissue(ctx, name);
  const minTissue = opts.minTissue ?? 0.5;
  const maxTries = opts.maxTries ?? 1000;
  const [fw, fh] = footprint(ctx.slide, r);
  const { width, height } = ctx.slide.levels[0];
  const fg = tissue.foreground;
  if (fg.length === 0)
    throw new Error(`${ctx.slide.source}: no tissue detected, cannot sample foreground patches`);
  const maskWidth = tissue.tissue.width;
  for (let attempt = 0; attempt < maxTries; attempt++) {
    const p = fg[ctx.rng.int(fg.length)];
    const cx = ((p % maskWidth) + ctx.rng.next()) * tissue.scaleX;
    const cy = (Math.floor(p / maskWidth) + ctx.rng.next()) * tissue.scaleY;
    const x = Math.min(Math.round(Math.max(cx - fw / 2, 0)), Math.floor(width - fw));
    const y = Math.min(Math.round(Math.max(cy - fh / 2, 0)), Math.floor(height - fh));
    if (tissue.fraction(x, y, fw, fh) >= minTissue) return spec(r, x, y);
  }
  throw new Error(
    `${ctx.slide.source}: no ${r.width}x${r.height} patch with tissue fraction ≥ ${minTissue} found in ${maxTries} tries`,
  );
}

/** Patches on tissue: random positions whose tissue fraction reaches minTissue. */
export function foregroundRandomSampler(
  opts: Resolution & PatchSize & ForegroundRandomOptions = {},
): Sampler {
  checkFraction('minTissue', opts.minTissue ?? 0.5);
  return {
    name: 'foreground-random',
    needsTissue: true,
    finite: false,
    *specs(ctx) {
      const r = resolveResolution(ctx.slide, opts, opts.size);
      while (true) yield foregroundPosition(ctx, r, opts, 'foreground-random');
    },
  };
}

export interface MultiMagnificationOptions extends PatchSize, ForegroundRandomOptions {
  /** The resolutions to draw from, in micrometres per pixel; one is chosen uniformly per patch. */
  mpps: number[];
  /** Sample on tissue (default true) or anywhere. */
  foreground?: boolean;
}

/** Random patches, each at one of several magnifications chosen uniformly. */
export function multiMagnificationSampler(opts: MultiMagnificationOptions): Sampler {
  if (!Array.isArray(opts.mpps) || opts.mpps.length === 0) {
    throw new Error('multi-magnification sampler needs a non-empty list of mpp values');
  }
  const foreground = opts.foreground ?? true;
  if (foreground) checkFraction('minTissue', opts.minTissue ?? 0.5);
  return {
    name: 'multi-magnification',
    needsTissue: foreground,
    finite: false,
    *specs(ctx) {
      const resolutions = opts.mpps.map((mpp) => resolveResolution(ctx.slide, { mpp }, opts.size));
      while (true) {
        const r = resolutions[ctx.rng.int(resolutions.length)];
        yield foreground ? foregroundPosition(ctx, r, opts, 'multi-magnification') : uniformPosition(ctx, r);
      }
    },
  };
}

export type SamplerName = 'grid' | 'random' | 'foreground-random' | 'foreground-grid' | 'multi-magnification';

/** A sampler by name, for the CLI and configs. */
export function createSampler(
  name: string,
  opts: GridOptions & ForegroundRandomOptions & { mpps?: number[]; foreground?: boolean },
): Sampler {
  switch (name) {
    case 'grid':
      return gridSampler(opts);
    case 'random':
      return randomSampler(opts);
    case 'foreground-random':
      return foregroundRandomSampler(opts);
    case 'foreground-grid':
      return foregroundGridSampler(opts);
    case 'multi-magnification':
      return multiMagnificationSampler({ ...opts, mpps: opts.mpps ?? (opts.mpp ? [opts.mpp] : []) });
    default:
      throw new Error(
        `unknown sampler '${name}' (grid, random, foreground-random, foreground-grid, multi-magnification)`,
      );
  }
}

/**
 * The order in which epoch `epoch` walks `n` grid cells: a permutation seeded by (seed, epoch), so every cell comes
 * exactly once per epoch, epochs differ, and any position of any epoch can be computed without the ones before it.
 */
export function epochPermutation(n: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rng = createRng(mixSeed(mixSeed(seed, 0x6e9c), epoch));
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

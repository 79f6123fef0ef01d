/**
 * Training patches read online from slides, fresh for every step: each batch's patches come from the configured
 * sampler and are a pure function of (seed, step, micro-batch, position), so a resumed run reads exactly the patches
 * an uninterrupted one would, and the next batch can be read while the current one trains.
 *
 * - `random`, `foreground-random`, `multi-magnification`: every patch picks a slide uniformly, then a position (and
 *   for multi-magnification an mpp) from the sampler, with its own seeded generator.
 * - `grid`: all grid cells of all training slides (on tissue when the data set's region is `foreground`) form one
 *   list; patch number g of the run is cell `permutation(epoch)[g mod cells]`, epoch = ⌊g / cells⌋, so every epoch
 *   walks the whole grid in a fresh order and no cell comes twice in an epoch.
 */
import { rasterize } from '../annotations/rasterize.ts';
import type { AnnotationSet } from '../annotations/types.ts';
import { TissueCoverage } from '../patching/coverage.ts';
import type { NamedSample } from '../patching/pairs.ts';
import { createRng, mixSeed } from '../patching/random.ts';
import { createSampler, epochPermutation, type PatchSpec, type Sampler } from '../patching/samplers.ts';
import {
  type LabelImage,
  labelsAt,
  loadAnnotations,
  loadLabelImage,
  openDatasetSlide,
  type SlideDataset,
  type SlideEntry,
  slideName,
} from '../patching/slide-dataset.ts';
import { readPatch, rgbaToRgbOnWhite } from '../patching/stream.ts';
import { detectTissue } from '../patching/tissue.ts';
import type { Slide } from '../slide/types.ts';

export const ONLINE_SAMPLERS = ['random', 'foreground-random', 'grid', 'multi-magnification'] as const;
export type OnlineSamplerName = (typeof ONLINE_SAMPLERS)[number];

/** Where a run is in its patch sequence (saved in checkpoints; grids also say which epoch and cell). */
export interface SamplerState {
  sampler: OnlineSamplerName;
  /** Patches drawn so far. */
  patches: number;
  /** Grid only: cells per epoch, the current epoch and the position in it. */
  cells?: number;
  epoch?: number;
  position?: number;
}

export interface OnlinePatches {
  readonly sampler: OnlineSamplerName;
  /** Grid only: the cells one epoch walks. */
  readonly cells: number | null;
  readonly description: string;
  /** The `count` patches of micro-batch k of `step` (names: `<slide>@x,y@mpp`). */
  batch(step: number, k: number): Promise<NamedSample[]>;
  /** The sampler state after `step` steps. */
  state(step: number): SamplerState;
  close(): Promise<void>;
}

export interface OnlinePatchOptions {
  sampler?: string;
  seed: number;
  /** Patches per micro-batch and micro-batches per step. */
  count: number;
  accumulate: number;
}

function mppsOf(ds: SlideDataset): number[] | undefined {
  return Array.isArray(ds.mpp) ? ds.mpp : ds.mpp !== undefined ? [ds.mpp] : undefined;
}

/** The sampler a data set trains with when the config names none. */
export function defaultOnlineSampler(ds: SlideDataset): OnlineSamplerName {
  if ((mppsOf(ds)?.length ?? 0) > 1) return 'multi-magnification';
  return ds.region === 'foreground' ? 'foreground-random' : 'random';
}

function samplerOf(ds: SlideDataset, name: OnlineSamplerName): Sampler {
  const mpps = mppsOf(ds);
  const opts = { size: ds.patchSize, minTissue: ds.minTissue, level: ds.level, mpp: mpps?.[0] };
  const fg = ds.region === 'foreground';
  switch (name) {
    case 'grid':
      return createSampler(fg ? 'foreground-grid' : 'grid', opts);
    case 'multi-magnification':
      if (!mpps) throw new Error(`${ds.source}: the multi-magnification sampler needs mpp: [list of µm/px]`);
      return createSampler('multi-magnification', { ...opts, mpp: undefined, mpps, foreground: fg });
    default:
      return createSampler(name, opts);
  }
}

interface OpenSlideData {
  name: string;
  slide: Slide;
  annotations: AnnotationSet | null;
  labels: LabelImage | null;
  tissue?: TissueCoverage;
}

export async function openOnlinePatches(
  ds: SlideDataset,
  entries: SlideEntry[],
  o: OnlinePatchOptions,
): Promise<OnlinePatches> {
  const name = (o.sampler ?? defaultOnlineSampler(ds)) as OnlineSamplerName;
  if (!ONLINE_SAMPLERS.includes(name)) {
    throw new Error(`data.sampler: unknown sampler '${o.sampler}' (valid: ${ONLINE_SAMPLERS.join(', ')})`);
  }
  if (entries.length === 0) throw new Error(`${ds.source}: no training slides`);
  const sampler = samplerOf(ds, name);
  const slides: OpenSlideData[] = [];
  try {
    for (const entry of entries) {
      const annotations = await loadAnnotations(ds, entry);
      const labels = await loadLabelImage(entry);
      const slide = await openDatasetSlide(ds, entry);
      const data: OpenSlideData = { name: slideName(entry), slide, annotations, labels };
      slides.push(data);
      // Tissue is detected once per slide, not per patch.
      if (sampler.needsTissue) data.tissue = new TissueCoverage(await detectTissue(slide));
    }
  } catch (e) {
    await Promise.allSettled(slides.map((s) => s.slide.close()));
    throw e;
  }

  // The grid's cells, in a fixed order (slide by slide, row by row).
  const cells: { slide: number; spec: PatchSpec }[] = [];
  if (name === 'grid') {
    for (const [i, s] of slides.entries()) {
      const it = sampler.specs({ slide: s.slide, rng: createRng(0), tissue: s.tissue });
      for (let r = it.next(); !r.done; r = it.next()) cells.push({ slide: i, spec: r.value });
    }
    if (cells.length === 0) {
      await Promise.allSettled(slides.map((s) => s.slide.close()));
      throw new Error(
        `${ds.source}: the training slides have no grid cell of ${ds.patchSize} px to train on`,
      );
    }
  }
  const permutations = new Map<number, Uint32Array>();
  const permutation = (epoch: number) => {
    let p = permutations.get(epoch);
    if (!p) {
      p = epochPermutation(cells.length, o.seed, epoch);
      permutations.clear(); // at most two epochs are live at once; keep the newest
      permutations.set(epoch, p);
    }
    return p;
  };
  const perStep = o.count * o.accumulate;

  const specAt = (step: number, k: number, b: number): { slide: number; spec: PatchSpec } => {
    if (name === 'grid') {
      const g = step * perStep + k * o.count + b;
      const epoch = Math.floor(g / cells.length);
      return cells[permutation(epoch)[g % cells.length]!]!;
    }
    const rng = createRng(mixSeed(mixSeed(o.seed ^ 0x0711e, step * o.accumulate + k), b));
    const slide = rng.int(slides.length);
    const s = slides[slide]!;
    const spec = sampler.specs({ slide: s.slide, rng, tissue: s.tissue }).next().value as PatchSpec;
    return { slide, spec };
  };

  const read = async ({ slide: i, spec }: { slide: number; spec: PatchSpec }): Promise<NamedSample> => {
    const s = slides[i]!;
    const rgba = await readPatch(s.slide, spec);
    if (rgba.width !== spec.width || rgba.height !== spec.height) {
      throw new Error(
        `${s.slide.source}: read ${rgba.width}x${rgba.height} for a ${spec.width}x${spec.height} patch`,
      );
    }
    const mask = s.labels
      ? labelsAt(s.labels, spec, ds.unannotated)
      : new Uint8Array(spec.width * spec.height).fill(ds.unannotated);
    if (s.annotations) {
      rasterize(
        s.annotations,
        {
          x: spec.x,
          y: spec.y,
          width: spec.width,
          height: spec.height,
          downsample: spec.downsample,
          classMap: ds.classes,
        },
        mask,
      );
    }
    return {
      name: `${s.name}@${spec.x},${spec.y}@${spec.mpp ?? `level${spec.level}`}`,
      image: rgbaToRgbOnWhite(rgba),
      mask,
      width: spec.width,
      height: spec.height,
    };
  };

  const mppText = mppsOf(ds)?.join('/') ?? `level ${ds.level ?? 0}`;
  return {
    sampler: name,
    cells: name === 'grid' ? cells.length : null,
    description:
      `${slides.length} training slide(s), ${name} sampler, ${ds.patchSize} px patches at ${mppText}` +
      (name === 'grid' ? `, ${cells.length} grid cells per epoch` : '') +
      ', read online every step',
    batch(step, k) {
      return Promise.all(Array.from({ length: o.count }, (_, b) => read(specAt(step, k, b))));
    },
    state(step) {
      const patches = step * perStep;
      if (name !== 'grid') return { sampler: name, patches };
      return {
        sampler: name,
        patches,
        cells: cells.length,
        epoch: Math.floor(patches / cells.length),
        position: patches % cells.length,
      };
    },
    async close() {
      await Promise.allSettled(slides.map((s) => s.slide.close()));
    },
  };
}

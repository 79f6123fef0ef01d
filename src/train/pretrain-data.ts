/**
 * Patches for contrastive pretraining and their labels, from one of three sources: (a) image + mask folders
 * (random patches; label = the mask's majority class), (b) slides read online through `patchStream` (label from
 * rasterised annotations), (c) a CSV of (image path, label) rows. Every draw of step s comes from a generator
 * seeded by (seed, s), so a resumed run sees exactly the patches an uninterrupted one would.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import sharp from 'sharp';
import { readAnnotations } from '../annotations/index.ts';
import { rasterize } from '../annotations/rasterize.ts';
import type { AnnotationSet } from '../annotations/types.ts';
import { augment, type Sample } from '../patching/augment.ts';
import { TissueCoverage } from '../patching/coverage.ts';
import { createSampler, detectTissue, mixSeed, openSlideByPath, patchStream } from '../patching/index.ts';
import { listPairs, loadPair, type NamedSample } from '../patching/pairs.ts';
import { createRng, type Rng } from '../patching/random.ts';
import { epochPermutation, type PatchSpec } from '../patching/samplers.ts';
import { readPatch, rgbaToRgbOnWhite } from '../patching/stream.ts';
import type { TissueMask } from '../patching/tissue.ts';
import type { Slide } from '../slide/types.ts';
import { labelSource, type PretrainConfig } from './pretrain-config.ts';

/** One patch (HWC RGB, patch × patch) and its label (-1 when the patch has none: SimCLR). */
export interface LabelledPatch {
  image: Uint8Array;
  label: number;
  /** Where it came from (level-0 corner in its image or slide), for previews and tests. */
  source: { index: number; x: number; y: number; mpp?: number | null };
}

export interface PatchSource {
  /** One line for the log. */
  readonly description: string;
  /** Class names by label index, when labels exist. */
  readonly classes: string[] | null;
  /**
   * `count` patches for step `step`, drawn from `rng` (and, for slides, from a stream seeded by `seed`; a grid
   * continues where the previous step stopped, walking every cell once per epoch).
   */
  draw(count: number, rng: Rng, seed: number, step?: number): Promise<LabelledPatch[]>;
  close(): Promise<void>;
}

/**
 * The label of a patch's mask: its most frequent class over pixels that are not `ignoreIndex` (ties go to the
 * smaller class), or -1 when every pixel is ignored. With `foregroundFraction`, 1 when the share of pixels with a
 * label > 0 reaches it, else 0.
 */
export function majorityLabel(
  mask: ArrayLike<number>,
  ignoreIndex: number,
  foregroundFraction: number | null = null,
): number {
  const counts = new Map<number, number>();
  let valid = 0;
  for (let i = 0; i < mask.length; i++) {
    const v = mask[i]!;
    if (v === ignoreIndex) continue;
    valid++;
    counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  if (valid === 0) return -1;
  if (foregroundFraction != null) {
    const fg = valid - (counts.get(0) ?? 0);
    return fg / valid >= foregroundFraction ? 1 : 0;
  }
  let best = -1;
  let bestCount = -1;
  for (const [label, n] of counts) {
    if (n > bestCount || (n === bestCount && label < best)) {
      best = label;
      bestCount = n;
    }
  }
  return best;
}

/** Copies the size × size window at (x0, y0) of an HWC image with `channels` channels. */
export function cutWindow(
  data: Uint8Array,
  width: number,
  channels: number,
  x0: number,
  y0: number,
  size: number,
): Uint8Array {
  const out = new Uint8Array(size * size * channels);
  for (let y = 0; y < size; y++) {
    const start = ((y0 + y) * width + x0) * channels;
    out.set(data.subarray(start, start + size * channels), y * size * channels);
  }
  return out;
}

/** Tries per patch to find one with at least one labelled pixel before giving up. */
const MAX_TRIES = 50;

async function folderSource(cfg: PretrainConfig, withLabels: boolean): Promise<PatchSource> {
  const d = cfg.data;
  const imagesDir = d.images ?? join(d.dir!, 'images');
  const masksDir = d.masks ?? join(d.dir!, 'masks');
  let pairs = await listPairs(imagesDir, masksDir);
  if (d.names) {
    const unknown = d.names.filter((n) => !pairs.some((p) => p.name === n));
    if (unknown.length > 0) throw new Error(`${imagesDir}: no image+mask pair named ${unknown.join(', ')}`);
    pairs = pairs.filter((p) => d.names!.includes(p.name));
  }
  const samples: NamedSample[] = await Promise.all(pairs.map((p) => loadPair(p, d.numLabels, d.ignoreIndex)));
  const P = cfg.patch;
  for (const s of samples) {
    if (s.width < P || s.height < P)
      throw new Error(`${imagesDir}/${s.name}: image is ${s.width}×${s.height}, smaller than patch ${P}`);
  }
  return {
    description: `${samples.length} images from ${imagesDir} (labels: ${withLabels ? 'mask majority' : 'none'})`,
    classes: withLabels
      ? d.foregroundFraction != null
        ? ['background', 'foreground']
        : Array.from({ length: d.numLabels }, (_, i) => `class_${i}`)
      : null,
    async draw(count, rng) {
      const out: LabelledPatch[] = [];
      for (let b = 0; b < count; b++) {
        for (let attempt = 0; ; attempt++) {
          const s = samples[rng.int(samples.length)]!;
          const x0 = rng.int(s.width - P + 1);
          const y0 = rng.int(s.height - P + 1);
          const label = withLabels
            ? majorityLabel(cutWindow(s.mask, s.width, 1, x0, y0, P), d.ignoreIndex, d.foregroundFraction)
            : 0;
          if (label >= 0) {
            out.push({
              image: cutWindow(s.image, s.width, 3, x0, y0, P),
              label: withLabels ? label : -1,
              source: { index: samples.indexOf(s), x: x0, y: y0 },
            });
            break;
          }
          if (attempt >= MAX_TRIES)
            throw new Error(`${masksDir}: ${MAX_TRIES} random patches in a row had only ignored pixels`);
        }
      }
      return out;
    },
    async close() {},
  };
}

async function slideSource(cfg: PretrainConfig, withLabels: boolean): Promise<PatchSource> {
  const d = cfg.data;
  const paths = d.slides!;
  const slides: Slide[] = [];
  try {
    for (const p of paths) slides.push(await openSlideByPath(p));
  } catch (e) {
    await Promise.all(slides.map((s) => s.close()));
    throw e;
  }
  const annotations: (AnnotationSet | null)[] = [];
  if (d.annotations) {
    if (d.annotations.length !== paths.length)
      throw new Error(
        `data.annotations: ${d.annotations.length} entries for ${paths.length} slides (one per slide, null for none)`,
      );
    for (const a of d.annotations) annotations.push(a ? await readAnnotations(a) : null);
  }
  // A list of mpps means multi-magnification sampling (on tissue unless the sampler says otherwise).
  const samplerName =
    d.mpps && d.mpps.length > 1 && !/grid/.test(d.sampler) ? 'multi-magnification' : d.sampler;
  const sampler = createSampler(samplerName, {
    size: cfg.patch,
    mpp: d.mpp ?? d.mpps?.[0],
    ...(d.mpps ? { mpps: d.mpps } : {}),
    foreground: d.sampler !== 'random',
    level: d.level,
    minTissue: d.minTissue,
  });
  // Tissue detection once, not per step: every step opens a fresh stream over the same open slides.
  const tissueMasks: (TissueMask | null)[] = sampler.needsTissue
    ? await Promise.all(slides.map((s) => detectTissue(s)))
    : slides.map(() => null);
  const classes = d.classMap
    ? Object.entries(d.classMap)
        .sort((a, b) => a[1] - b[1])
        .map(([k]) => k)
    : ['background', 'annotated'];
  const labelOf = (mask: Uint8Array | undefined) =>
    withLabels ? Math.max(0, mask ? majorityLabel(mask, d.ignoreIndex, d.foregroundFraction) : 0) : -1;
  // A grid is one list of cells over all slides, walked in a fresh order every epoch: patch g of the run is cell
  // permutation(⌊g / cells⌋)[g mod cells], so steps continue the walk instead of restarting it.
  const cells: { index: number; spec: PatchSpec }[] = [];
  if (sampler.finite) {
    for (const [index, slide] of slides.entries()) {
      const tissue = tissueMasks[index] ? new TissueCoverage(tissueMasks[index]!) : undefined;
      const it = sampler.specs({ slide, rng: createRng(0), tissue });
      for (let r = it.next(); !r.done; r = it.next()) cells.push({ index, spec: r.value });
    }
    if (cells.length === 0) throw new Error(`data.slides: the ${sampler.name} sampler found no patch`);
  }
  let permutation: { epoch: number; order: Uint32Array } | null = null;
  const cellAt = (g: number) => {
    const epoch = Math.floor(g / cells.length);
    if (permutation?.epoch !== epoch)
      permutation = { epoch, order: epochPermutation(cells.length, cfg.seed, epoch) };
    return cells[permutation.order[g % cells.length]!]!;
  };
  const readCell = async ({ index, spec }: { index: number; spec: PatchSpec }): Promise<LabelledPatch> => {
    const rgba = await readPatch(slides[index]!, spec);
    const set = annotations[index];
    const mask = set
      ? rasterize(
          set,
          {
            x: spec.x,
            y: spec.y,
            width: spec.width,
            height: spec.height,
            downsample: spec.downsample,
            classMap: d.classMap,
          },
          new Uint8Array(spec.width * spec.height),
        )
      : undefined;
    return {
      image: rgbaToRgbOnWhite(rgba),
      label: labelOf(mask),
      source: { index, x: spec.x, y: spec.y, mpp: spec.mpp },
    };
  };
  return {
    description:
      `${slides.length} slide(s), ${sampler.name} sampler` +
      (sampler.finite ? ` (${cells.length} cells, each once per epoch)` : '') +
      ` (labels: ${withLabels ? 'annotation majority' : 'none'})`,
    classes: withLabels ? classes : null,
    async draw(count, _rng, seed, step = 0) {
      if (sampler.finite) {
        return Promise.all(Array.from({ length: count }, (_, b) => readCell(cellAt(step * count + b))));
      }
      const out: LabelledPatch[] = [];
      const stream = patchStream({
        slides,
        sampler,
        count,
        seed,
        tissueMasks,
        ...(annotations.length > 0 ? { annotations } : {}),
        ...(d.classMap ? { classMap: d.classMap } : {}),
      });
      for await (const p of stream) {
        const label = withLabels
          ? p.mask
            ? majorityLabel(p.mask, d.ignoreIndex, d.foregroundFraction)
            : 0
          : -1;
        out.push({
          image: p.image,
          label: withLabels ? Math.max(0, label) : -1,
          source: { index: p.slideIndex, x: p.x, y: p.y, mpp: p.mpp },
        });
      }
      return out;
    },
    async close() {
      await Promise.all(slides.map((s) => s.close()));
    },
  };
}

/** Parses `path,label` rows (optional header; quotes around a field are stripped). */
export function parseLabelCsv(text: string, source: string): { path: string; label: string }[] {
  const rows: { path: string; label: string }[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line || line.startsWith('#')) continue;
    const cells = line.split(',').map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
    if (cells.length < 2 || !cells[0] || !cells[1])
      throw new Error(`${source}:${i + 1}: expected 'image path,label', got '${line}'`);
    if (rows.length === 0 && /^(path|image|file|filename|image_path)$/i.test(cells[0]!)) continue;
    rows.push({ path: cells[0]!, label: cells[1]! });
  }
  if (rows.length === 0) throw new Error(`${source}: no (image path, label) rows`);
  return rows;
}

async function csvSource(cfg: PretrainConfig, withLabels: boolean): Promise<PatchSource> {
  const csv = cfg.data.csv!;
  let text: string;
  try {
    text = await readFile(csv, 'utf8');
  } catch (e) {
    throw new Error(`${csv}: cannot read CSV (${(e as NodeJS.ErrnoException).code})`);
  }
  const rows = parseLabelCsv(text, csv);
  // Integer labels keep their values; any other labels become indices in sorted order.
  const names = [...new Set(rows.map((r) => r.label))];
  const numeric = names.every((n) => /^\d+$/.test(n));
  const classes = numeric ? names.sort((a, b) => Number(a) - Number(b)) : names.sort();
  const index = new Map(classes.map((n, i) => [n, numeric ? Number(n) : i]));
  const P = cfg.patch;
  const images = await Promise.all(
    rows.map(async (r) => {
      const path = isAbsolute(r.path) ? r.path : join(dirname(csv), r.path);
      try {
        const img = sharp(path).removeAlpha().toColourspace('srgb');
        const meta = await img.metadata();
        // Patches smaller than `patch` are enlarged to cover it (aspect kept).
        const f = Math.max(1, P / Math.min(meta.width ?? P, meta.height ?? P));
        const resized =
          f > 1 ? img.resize(Math.ceil((meta.width ?? P) * f), Math.ceil((meta.height ?? P) * f)) : img;
        const { data, info } = await resized.raw().toBuffer({ resolveWithObject: true });
        return {
          data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
          width: info.width,
          height: info.height,
          label: index.get(r.label)!,
        };
      } catch (e) {
        throw new Error(`${csv}: cannot read image ${path} (${(e as Error).message})`);
      }
    }),
  );
  return {
    description: `${rows.length} patches from ${csv} (${classes.length} labels${withLabels ? '' : ', unused'})`,
    classes: withLabels ? classes : null,
    async draw(count, rng) {
      const out: LabelledPatch[] = [];
      for (let b = 0; b < count; b++) {
        const index = rng.int(images.length);
        const s = images[index]!;
        const x0 = rng.int(s.width - P + 1);
        const y0 = rng.int(s.height - P + 1);
        out.push({
          image: cutWindow(s.data, s.width, 3, x0, y0, P),
          label: withLabels ? s.label : -1,
          source: { index, x: x0, y: y0 },
        });
      }
      return out;
    },
    async close() {},
  };
}

export async function openPatchSource(cfg: PretrainConfig): Promise<PatchSource> {
  const withLabels = labelSource(cfg) !== 'none';
  if (cfg.data.csv) return csvSource(cfg, withLabels);
  if (cfg.data.slides?.length) return slideSource(cfg, withLabels);
  return folderSource(cfg, withLabels);
}

/**
 * Two augmented views of every patch, view-major (all first views, then all second views), and the labels
 * (null when the patches have none).
 */
export function twoViews(
  patches: LabelledPatch[],
  cfg: PretrainConfig,
  rng: Rng,
): { views: Sample[]; labels: Int32Array | null } {
  const P = cfg.patch;
  const opts = { ...cfg.augment, crop: P };
  const blank = new Uint8Array(P * P);
  const views: Sample[] = [];
  for (let v = 0; v < 2; v++) {
    for (const p of patches)
      views.push(augment({ image: p.image, mask: blank, width: P, height: P }, opts, rng));
  }
  const labelled = patches.every((p) => p.label >= 0);
  return { views, labels: labelled ? Int32Array.from(patches, (p) => p.label) : null };
}

/** The seed of step s's slide stream (independent of the step's augmentation generator). */
export function streamSeed(seed: number, step: number): number {
  return mixSeed(seed ^ 0x5a1de, step);
}

/**
 * `evaluate`: a trained SegFormer folder scored on folders of images and label masks (class index per pixel),
 * with the sliding window used at inference. One streaming confusion matrix gives the data-set scores and
 * one per image gives the per-image scores; the worst and best images get TP/FP/FN overlays.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { Progress } from '../core/progress.ts';
import { argmaxLabels, type Normalisation, slidingWindowProbabilities } from '../core/sliding.ts';
import { type TestTimeAugmentation, ttaViews } from '../core/tta.ts';
import { ready } from '../engine/index.ts';
import { ConfusionMatrix, type SegmentationMetrics } from '../metrics/index.ts';
import {
  defaultPreprocessorConfig,
  labelClasses,
  loadPreprocessorConfig,
  loadSegformer,
  numLabels as numLabelsOf,
  twoClassNames,
} from '../models/segformer/index.ts';
import { tileModelOf } from '../models/segformer/tile-model.ts';
import { loadPair } from '../patching/pairs.ts';
import {
  checkSlideLabels,
  labelledPatches,
  readSlideDataset,
  type SlideDataset,
  slideName,
  splitSlides,
} from '../patching/slide-dataset.ts';
import { errorOverlay, writePNG } from '../viz/index.ts';
import { normalisationOf } from './normalisation.ts';

export interface EvaluateOptions {
  /** Foreground probability threshold of a one-logit (binary) model (default 0.5). */
  threshold?: number;
  /** Folders of images and label masks matched by name … */
  images?: string;
  masks?: string;
  /** … or a slide data set (file or parsed): slides with annotations, scored on grid patches. */
  data?: string | SlideDataset;
  /** With `data`: which slides (the seeded split by slide, as `train` makes it), default all. */
  split?: 'train' | 'val' | 'all';
  seed?: number;
  /** Sliding-window tile and overlap in pixels (default 512 / 64); the tile shrinks to small images. */
  tile?: number;
  overlap?: number;
  /** Test-time augmentation (default none): probabilities averaged over 4 flips or 8 dihedral views. */
  tta?: TestTimeAugmentation;
  /** Mask value left out of every score (default 255). */
  ignoreIndex?: number;
  /** How many worst and how many best images get overlays (default 3 each). */
  numWorst?: number;
  /** Folder for the TP/FP/FN overlays; none written when absent. */
  overlays?: string;
  /** No progress on stderr. */
  quiet?: boolean;
}

export interface ClassScores {
  index: number;
  name: string;
  iou: number | null;
  dice: number | null;
  precision: number | null;
  recall: number | null;
  /** Target pixels of the class. */
  support: number;
}

export interface ImageScores {
  name: string;
  image: string;
  mask: string;
  width: number;
  height: number;
  /** The ranking score: mean Dice over the foreground classes present (all classes when none is). */
  dice: number;
  mIoU: number;
  mDice: number;
  aAcc: number;
  iou: (number | null)[];
  diceByClass: (number | null)[];
}

export interface EvaluationResult {
  model: string;
  /** The slide data set evaluated, or null for folders. */
  data: string | null;
  /** Images (folders) or slides (data set) scored; `perImage` has one entry each. */
  images: number;
  /** Patches scored (slide data sets), or null. */
  patches: number | null;
  numLabels: number;
  ignoreIndex: number;
  tile: number;
  overlap: number;
  tta: TestTimeAugmentation;
  normalisation: Normalisation;
  classes: ClassScores[];
  mIoU: number;
  mDice: number;
  aAcc: number;
  /** Matthews correlation (binary tasks only; null otherwise). */
  mcc: number | null;
  pixels: number;
  /** Confusion matrix, rows = target class. */
  matrix: number[][];
  perImage: ImageScores[];
  /** Image names (patch names `slide@x,y` for slides), worst first / best first by Dice. */
  worst: string[];
  best: string[];
  /** Overlay files written (worst then best). */
  overlayFiles: string[];
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.tif', '.tiff']);

async function listImages(dir: string, what: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort();
  } catch (e) {
    throw new Error(`${dir}: cannot list ${what} (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
}

/** Every image must have a mask of the same base name: a missing one is an error naming the image. */
export async function matchImagesAndMasks(
  imagesDir: string,
  masksDir: string,
): Promise<{ name: string; image: string; mask: string }[]> {
  const images = await listImages(imagesDir, 'images');
  if (images.length === 0) throw new Error(`${imagesDir}: no images (.png, .jpg, .tif) found`);
  const masks = await listImages(masksDir, 'masks');
  const byName = new Map<string, string>();
  for (const m of masks) {
    const name = basename(m, extname(m));
    // Prefer a PNG when a mask name exists with several extensions: masks are label PNGs.
    if (!byName.has(name) || extname(m).toLowerCase() === '.png') byName.set(name, m);
  }
  return images.map((f) => {
    const name = basename(f, extname(f));
    const m = byName.get(name);
    if (!m) throw new Error(`${join(imagesDir, f)}: no mask named ${name}.png in ${masksDir}`);
    return { name, image: join(imagesDir, f), mask: join(masksDir, m) };
  });
}

/** Mean Dice over the foreground classes (1…C−1) present in the image; mDice when only background is. */
export function imageDice(m: SegmentationMetrics): number {
  const fg = m.dice.slice(1).filter((d): d is number => d != null);
  return fg.length > 0 ? fg.reduce((a, b) => a + b, 0) / fg.length : m.mDice;
}

/** One scored unit: an image (folders) or a patch (slides), grouped per image or per slide. */
interface EvalUnit {
  name: string;
  /** Per-image scores are per group: the image itself, or the slide a patch comes from. */
  group: { name: string; image: string; mask: string; width: number; height: number };
  image: Uint8Array;
  mask: Uint8Array;
  width: number;
  height: number;
}

/** Folder data: every image with its mask, loaded one at a time. */
async function* folderUnits(
  pairs: { name: string; image: string; mask: string }[],
  C: number,
  ignoreIndex: number,
): AsyncGenerator<EvalUnit> {
  for (const p of pairs) {
    const s = await loadPair(p, C, ignoreIndex);
    const group = { name: p.name, image: p.image, mask: p.mask, width: s.width, height: s.height };
    yield { name: p.name, group, image: s.image, mask: s.mask, width: s.width, height: s.height };
  }
}

/** Slide data: grid patches (on tissue, at the data set's mpp or level) of every slide, masks from annotations. */
async function* slideUnits(
  ds: SlideDataset,
  o: EvaluateOptions,
  C: number,
  ignoreIndex: number,
): AsyncGenerator<EvalUnit> {
  const entries = o.split && o.split !== 'all' ? splitSlides(ds, o.seed ?? 0)[o.split] : ds.slides;
  if (entries.length === 0) throw new Error(`${ds.source}: no ${o.split} slides to evaluate`);
  checkSlideLabels(ds, C, ignoreIndex);
  const groups = new Map(
    entries.map((e) => {
      const name = slideName(e);
      return [name, { name, image: e.slide, mask: e.annotations ?? '', width: 0, height: 0 }];
    }),
  );
  for await (const p of labelledPatches(ds, entries, 'eval', o.seed ?? 0)) {
    yield {
      name: p.name,
      group: groups.get(p.slide)!,
      image: p.image,
      mask: p.mask,
      width: p.width,
      height: p.height,
    };
  }
}

/** Keeps the predictions of the `k` lowest (or highest) ranked units only, so overlays cost bounded memory. */
class Extremes {
  readonly kept: { name: string; dice: number; unit: EvalUnit; pred: Uint8Array }[] = [];
  constructor(
    private readonly k: number,
    private readonly sign: 1 | -1,
  ) {}
  offer(name: string, dice: number, unit: EvalUnit, pred: Uint8Array): void {
    if (this.k === 0) return;
    this.kept.push({ name, dice, unit, pred });
    this.kept.sort((a, b) => this.sign * (a.dice - b.dice) || this.sign * a.name.localeCompare(b.name));
    if (this.kept.length > this.k) this.kept.pop();
  }
}

/** The scores of each image (or slide): its patches' confusion matrices summed. */
function perImageScores(
  groups: Iterable<{ group: EvalUnit['group']; cm: ConfusionMatrix }>,
  ignoreIndex: number,
): ImageScores[] {
  const perImage: ImageScores[] = [];
  for (const { group, cm } of groups) {
    let m: SegmentationMetrics;
    try {
      m = cm.compute();
    } catch {
      throw new Error(
        `${group.mask || group.image}: every pixel is ignoreIndex ${ignoreIndex}, nothing to score`,
      );
    }
    perImage.push({
      name: group.name,
      image: group.image,
      mask: group.mask,
      width: group.width,
      height: group.height,
      dice: imageDice(m),
      mIoU: m.mIoU,
      mDice: m.mDice,
      aAcc: m.aAcc,
      iou: m.iou,
      diceByClass: m.dice,
    });
  }
  return perImage;
}

/** The names of the `n` lowest-Dice units and of up to `n` highest (never the same unit twice), worst first. */
function extremes(ranking: { name: string; dice: number }[], n: number): { worst: string[]; best: string[] } {
  const ranked = [...ranking].sort((a, b) => a.dice - b.dice || a.name.localeCompare(b.name));
  const k = Math.min(n, Math.ceil(ranked.length / 2));
  const worst = ranked.slice(0, k).map((s) => s.name);
  const best = ranked
    .slice(ranked.length - Math.min(n, ranked.length - k))
    .reverse()
    .map((s) => s.name);
  return { worst, best };
}

/** `<dir>/<tag>-<rank>-<name>.png`: the unit's prediction against its mask (TP, FP, FN, wrong class). */
async function writeErrorOverlay(
  dir: string,
  tag: string,
  rank: number,
  kept: { name: string; unit: EvalUnit; pred: Uint8Array },
  ignoreIndex: number,
): Promise<string> {
  const { name, unit: u, pred } = kept;
  const size = { width: u.width, height: u.height };
  const img = errorOverlay(
    { data: u.image, ...size },
    { data: pred, ...size },
    { data: u.mask, ...size },
    0.5,
    {
      ignoreIndex,
    },
  );
  const file = join(dir, `${tag}-${rank + 1}-${name.replace(/[^\w.,@-]+/g, '_')}.png`);
  await writePNG(file, img);
  return file;
}

export async function evaluate(modelDir: string, o: EvaluateOptions): Promise<EvaluationResult> {
  await ready();
  const log = (m: string) => {
    if (!o.quiet) process.stderr.write(`${m}\n`);
  };
  const tile = o.tile ?? 512;
  const overlap = o.overlap ?? 64;
  const ignoreIndex = o.ignoreIndex ?? 255;
  const numWorst = o.numWorst ?? 3;
  if (!Number.isInteger(tile) || tile < 32) throw new Error(`tile must be an integer ≥ 32, got ${tile}`);
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= tile)
    throw new Error(`overlap must be an integer in [0, tile), got ${overlap}`);
  ttaViews(o.tta); // rejects an unknown mode before any work

  const ds = o.data ? (typeof o.data === 'string' ? await readSlideDataset(o.data) : o.data) : undefined;
  if (!ds && (!o.images || !o.masks))
    throw new Error('evaluate: give images and masks folders, or a slide data set');
  // Folder inputs are checked before the model is loaded, so a missing mask fails fast.
  const pairs = ds ? [] : await matchImagesAndMasks(o.images!, o.masks!);
  const { model } = await loadSegformer(modelDir);
  const hasPre = existsSync(join(modelDir, 'preprocessor_config.json'));
  if (!hasPre) log(`${modelDir}: no preprocessor_config.json, using ImageNet normalisation`);
  const pre = hasPre ? await loadPreprocessorConfig(modelDir) : defaultPreprocessorConfig();
  const norm = normalisationOf(pre);
  // A one-logit model is scored as background/foreground (foreground where σ(z) > threshold).
  const binary = numLabelsOf(model.config) === 1;
  const C = labelClasses(numLabelsOf(model.config));
  const id2label: Record<string, string> = binary
    ? Object.fromEntries(twoClassNames(model.config.id2label?.['0']).map((n, i) => [String(i), n]))
    : (model.config.id2label ?? {});
  const tileModel = tileModelOf(model, o.threshold);
  const total = new ConfusionMatrix(C, { ignoreIndex });
  const groups = new Map<string, { group: EvalUnit['group']; cm: ConfusionMatrix }>();
  const ranking: { name: string; dice: number }[] = [];
  const worstKept = new Extremes(o.overlays ? numWorst : 0, 1);
  const bestKept = new Extremes(o.overlays ? numWorst : 0, -1);
  const units = ds ? slideUnits(ds, o, C, ignoreIndex) : folderUnits(pairs, C, ignoreIndex);
  const progress = new Progress('evaluate', pairs.length);
  let count = 0;
  try {
    for await (const u of units) {
      const side = Math.max(u.width, u.height);
      const probs = await slidingWindowProbabilities(tileModel, u.image, u.width, u.height, {
        tile: Math.min(tile, side),
        overlap: Math.min(overlap, Math.max(0, Math.min(tile, side) - 1)),
        norm,
        tta: o.tta,
      });
      const pred = argmaxLabels(probs, C);
      total.update(pred, u.mask);
      const unitCm = new ConfusionMatrix(C, { ignoreIndex }).update(pred, u.mask);
      let g = groups.get(u.group.name);
      if (!g) {
        g = { group: u.group, cm: new ConfusionMatrix(C, { ignoreIndex }) };
        groups.set(u.group.name, g);
      }
      g.cm.update(pred, u.mask);
      count++;
      let dice: number | null = null;
      try {
        dice = imageDice(unitCm.compute());
      } catch {
        // A patch whose pixels are all ignored has no score (an image like that fails below).
      }
      if (dice != null) {
        ranking.push({ name: u.name, dice });
        worstKept.offer(u.name, dice, u, pred);
        bestKept.offer(u.name, dice, u, pred);
      }
      if (!o.quiet) progress.update(count, dice != null ? { dice } : {}, count === pairs.length);
    }
  } finally {
    model.dispose();
  }
  if (!o.quiet) progress.done();
  if (count === 0) throw new Error(`${ds?.source ?? o.images}: nothing to evaluate (no patches or images)`);
  const perImage = perImageScores(groups.values(), ignoreIndex);
  const r = total.compute();
  const { worst, best } = extremes(ranking, numWorst);
  const overlayFiles: string[] = [];
  if (o.overlays) {
    const kept = new Map([...worstKept.kept, ...bestKept.kept].map((e) => [e.name, e]));
    for (const [j, n] of worst.entries())
      overlayFiles.push(await writeErrorOverlay(o.overlays, 'worst', j, kept.get(n)!, ignoreIndex));
    for (const [j, n] of best.entries())
      overlayFiles.push(await writeErrorOverlay(o.overlays, 'best', j, kept.get(n)!, ignoreIndex));
    log(`overlays: ${overlayFiles.length} in ${o.overlays} (TP green, FP red, FN blue, wrong class orange)`);
  }
  const support = r.matrix.map((row) => row.reduce((a, b) => a + b, 0));
  return {
    model: modelDir,
    data: ds ? ds.source : null,
    images: perImage.length,
    patches: ds ? count : null,
    numLabels: C,
    ignoreIndex,
    tile,
    overlap,
    tta: o.tta ?? 'none',
    normalisation: norm,
    classes: Array.from({ length: C }, (_, c) => ({
      index: c,
      name: id2label[String(c)] ?? `class_${c}`,
      iou: r.iou[c]!,
      dice: r.dice[c]!,
      precision: r.precision[c]!,
      recall: r.recall[c]!,
      support: support[c]!,
    })),
    mIoU: r.mIoU,
    mDice: r.mDice,
    aAcc: r.aAcc,
    mcc: C === 2 ? r.mcc : null,
    pixels: r.pixels,
    matrix: r.matrix,
    perImage,
    worst,
    best,
    overlayFiles,
  };
}

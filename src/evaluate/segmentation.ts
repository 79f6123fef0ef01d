/**
 * `evaluate`: a trained SegFormer folder scored on folders of images and label masks (class index per pixel),
 * with the sliding window used at inference. One streaming confusion matrix gives the data-set scores and
 * one per image gives the per-image scores; the worst and best images get TP/FP/FN overlays.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { ready } from '../engine/index.ts';
import { argmaxLabels, type Normalisation, slidingWindowProbabilities } from '../infer/sliding.ts';
import { ConfusionMatrix, type SegmentationMetrics } from '../metrics/index.ts';
import {
  defaultPreprocessorConfig,
  loadPreprocessorConfig,
  loadSegformer,
  numLabels as numLabelsOf,
} from '../models/segformer/index.ts';
import { loadPair } from '../train/data.ts';
import { Progress } from '../train/progress.ts';
import { tileModelOf } from '../train/trainer.ts';
import { errorOverlay, writePNG } from '../viz/index.ts';
import { normalisationOf } from './normalisation.ts';

export interface EvaluateOptions {
  images: string;
  masks: string;
  /** Sliding-window tile and overlap in pixels (default 512 / 64); the tile shrinks to small images. */
  tile?: number;
  overlap?: number;
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
  images: number;
  numLabels: number;
  ignoreIndex: number;
  tile: number;
  overlap: number;
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
  /** Image names, worst first / best first by per-image Dice. */
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

  const pairs = await matchImagesAndMasks(o.images, o.masks);
  const { model } = await loadSegformer(modelDir);
  const hasPre = existsSync(join(modelDir, 'preprocessor_config.json'));
  if (!hasPre) log(`${modelDir}: no preprocessor_config.json, using ImageNet normalisation`);
  const pre = hasPre ? await loadPreprocessorConfig(modelDir) : defaultPreprocessorConfig();
  const norm = normalisationOf(pre);
  const C = numLabelsOf(model.config);
  const id2label = model.config.id2label ?? {};
  const tileModel = tileModelOf(model);
  const total = new ConfusionMatrix(C, { ignoreIndex });
  const perImage: ImageScores[] = [];
  const predictions = new Map<string, Uint8Array>();
  const progress = new Progress('evaluate', pairs.length);
  try {
    for (const [i, p] of pairs.entries()) {
      const s = await loadPair(p, C, ignoreIndex);
      const probs = await slidingWindowProbabilities(tileModel, s.image, s.width, s.height, {
        tile: Math.min(tile, Math.max(s.width, s.height)),
        overlap: Math.min(overlap, Math.max(0, Math.min(tile, Math.max(s.width, s.height)) - 1)),
        norm,
      });
      const pred = argmaxLabels(probs, C);
      total.update(pred, s.mask);
      let m: SegmentationMetrics;
      try {
        m = new ConfusionMatrix(C, { ignoreIndex }).update(pred, s.mask).compute();
      } catch {
        throw new Error(`${p.mask}: every pixel is ignoreIndex ${ignoreIndex}, nothing to score`);
      }
      perImage.push({
        name: p.name,
        image: p.image,
        mask: p.mask,
        width: s.width,
        height: s.height,
        dice: imageDice(m),
        mIoU: m.mIoU,
        mDice: m.mDice,
        aAcc: m.aAcc,
        iou: m.iou,
        diceByClass: m.dice,
      });
      if (o.overlays) predictions.set(p.name, pred);
      if (!o.quiet) progress.update(i + 1, { dice: perImage.at(-1)!.dice }, i + 1 === pairs.length);
    }
  } finally {
    model.dispose();
  }
  if (!o.quiet) progress.done();
  const r = total.compute();
  const ranked = [...perImage].sort((a, b) => a.dice - b.dice || a.name.localeCompare(b.name));
  const k = Math.min(numWorst, Math.ceil(ranked.length / 2));
  const worst = ranked.slice(0, k).map((s) => s.name);
  const best = ranked
    .slice(ranked.length - Math.min(numWorst, ranked.length - k))
    .reverse()
    .map((s) => s.name);
  const overlayFiles: string[] = [];
  if (o.overlays) {
    const byName = new Map(perImage.map((s) => [s.name, s]));
    const write = async (tag: string, rank: number, name: string) => {
      const s = byName.get(name)!;
      const sample = await loadPair(s, C, ignoreIndex);
      const img = errorOverlay(
        { data: sample.image, width: s.width, height: s.height },
        { data: predictions.get(name)!, width: s.width, height: s.height },
        { data: sample.mask, width: s.width, height: s.height },
        0.5,
        { ignoreIndex },
      );
      const file = join(o.overlays!, `${tag}-${rank + 1}-${name}.png`);
      await writePNG(file, img);
      overlayFiles.push(file);
    };
    for (const [j, n] of worst.entries()) await write('worst', j, n);
    for (const [j, n] of best.entries()) await write('best', j, n);
    log(`overlays: ${overlayFiles.length} in ${o.overlays} (TP green, FP red, FN blue, wrong class orange)`);
  }
  const support = r.matrix.map((row) => row.reduce((a, b) => a + b, 0));
  return {
    model: modelDir,
    images: perImage.length,
    numLabels: C,
    ignoreIndex,
    tile,
    overlap,
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

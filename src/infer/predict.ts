/**
 * One image through a SegFormer checkpoint folder. Writes the raw stride-4 logits
 * (.npy, NCHW, exactly the decoder output), the class mask (logits bilinearly upsampled to the image size
 * with align_corners=False, then argmax: Hugging Face's `post_process_semantic_segmentation`) and an
 * overlay with a legend. Whole slides go through `slideseg infer`, which tiles them.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ready, tf } from '../engine/index.ts';
import {
  type DecodedImage,
  ImageTooLargeError,
  preprocessImage,
  readImageRGB,
  resizeTarget,
} from '../image/index.ts';
import { writeNpy } from '../io/npy.ts';
import {
  loadPreprocessorConfig,
  loadSegformer,
  type PreprocessorConfig,
  readSegformerConfig,
  type SegformerConfig,
  twoClassLogits,
} from '../models/segformer/index.ts';
import { legendEntries, makePalette, overlay, withLegend, writeMaskPNG, writePNG } from '../viz/index.ts';

/** Attention memory (bytes) above which one forward pass is refused in favour of tiled inference. */
const MAX_ATTENTION_BYTES = 2 ** 31;

export interface PredictOptions {
  model: string;
  image: string;
  logits?: string;
  mask?: string;
  overlay?: string;
  alpha?: number;
  strict?: boolean;
  backend?: string;
  /** Where progress and notes go (default: stderr). */
  log?: (line: string) => void;
  verbose?: boolean;
  /** Foreground probability threshold of a one-logit (binary) model (default 0.5). */
  threshold?: number;
}

export interface PredictResult {
  backend: string;
  width: number;
  height: number;
  numLabels: number;
  /** Class names (config id2label) by index. */
  labels: string[];
  /** Decoder logits, NCHW [1, numLabels, ceil(H/4), ceil(W/4)]. */
  logits: { data: Float32Array; shape: [1, number, number, number] };
  /** Class per pixel at the image size, row-major. */
  mask: Uint8Array | Int32Array;
  /** Pixels per class. */
  counts: number[];
  /** Conversions applied to the input image. */
  notes: string[];
}

/** Checks the folder and its files up front so each problem gets one clear line. */
function checkModelFolder(dir: string): void {
  if (!existsSync(dir)) throw new Error(`${dir}: model folder not found`);
  if (!statSync(dir).isDirectory())
    throw new Error(`${dir}: --model must be a checkpoint folder, not a file`);
  if (!existsSync(join(dir, 'config.json'))) {
    throw new Error(`${dir}: no config.json (a SegFormer folder holds config.json and model.safetensors)`);
  }
}

/** The preprocessing of the folder, or HF's normalisation at native size when it has none (noted). */
async function preprocessingOf(
  dir: string,
  notes: string[],
): Promise<PreprocessorConfig | Record<string, never>> {
  if (existsSync(join(dir, 'preprocessor_config.json'))) return loadPreprocessorConfig(dir);
  notes.push('no preprocessor_config.json: rescale 1/255 and ImageNet mean/std at the image size');
  return {};
}

/** Bytes of the stage-1 attention matrix for an input of `pixels` pixels (the largest buffer of a forward). */
function attentionBytes(config: SegformerConfig, pixels: number): number {
  const tokens = pixels / config.strides[0]! ** 2;
  return ((tokens * tokens) / config.sr_ratios[0]! ** 2) * config.num_attention_heads[0]! * 4;
}

/** The largest input (pixels) whose attention fits in MAX_ATTENTION_BYTES. */
function maxInputPixels(config: SegformerConfig): number {
  return Math.floor(
    Math.sqrt((MAX_ATTENTION_BYTES * config.sr_ratios[0]! ** 2) / (config.num_attention_heads[0]! * 4)) *
      config.strides[0]! ** 2,
  );
}

function tooLarge(config: SegformerConfig, what: string, width: number, height: number): Error {
  const gib = attentionBytes(config, width * height) / 2 ** 30;
  return new Error(
    `${what}: ${width}x${height} is too large for one forward pass (attention needs ~${gib.toFixed(1)} GiB, ` +
      `limit ${(MAX_ATTENTION_BYTES / 2 ** 30).toFixed(0)} GiB); crop it, or use \`slideseg infer\`, which tiles`,
  );
}

/** Runs the model on one image and writes the requested outputs. */
export async function predict(opts: PredictOptions): Promise<PredictResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const t0 = performance.now();
  checkModelFolder(opts.model);
  // The config and preprocessing come first (cheap), so an oversized image is refused before decoding.
  const config = await readSegformerConfig(join(opts.model, 'config.json'));
  const folderNotes: string[] = [];
  const preprocessing = await preprocessingOf(opts.model, folderNotes);
  const resizeTo = resizeTarget(preprocessing);
  if (resizeTo && attentionBytes(config, resizeTo.width * resizeTo.height) > MAX_ATTENTION_BYTES) {
    throw tooLarge(config, `${opts.model}: preprocessor size`, resizeTo.width, resizeTo.height);
  }
  let image: DecodedImage;
  try {
    image = await readImageRGB(opts.image, {
      alpha: opts.strict ? 'refuse' : 'composite',
      sixteenBit: opts.strict ? 'refuse' : 'scale',
      maxPixels: resizeTo ? undefined : maxInputPixels(config),
    });
  } catch (e) {
    if (e instanceof ImageTooLargeError) throw tooLarge(config, e.file, e.width, e.height);
    throw e;
  }
  const notes = [...image.notes.map((n) => `${opts.image}: ${n}`), ...folderNotes];
  for (const n of notes) log(`note: ${n}`);

  const backend = await ready(opts.backend);
  if (opts.verbose) log(`backend: ${backend}`);
  const { model } = await loadSegformer(opts.model);
  try {
    // A one-logit (binary) model labels foreground where σ(z) > 0.5: two label classes, background first.
    const binary = Object.keys(model.config.id2label).length === 1;
    const id2label: Record<string, string> = binary
      ? { 0: 'background', 1: model.config.id2label[0] ?? 'foreground' }
      : model.config.id2label;
    const numLabels = binary ? 2 : Object.keys(model.config.id2label).length;
    const pixels = await preprocessImage(image, preprocessing);
    if (opts.verbose) {
      log(
        `model: ${opts.model} (${model.numParameters().toLocaleString('en')} parameters, ${numLabels} labels); ` +
          `image ${image.width}x${image.height} ${image.format}, model input ${pixels.shape[2]}x${pixels.shape[1]}`,
      );
    }
    const t1 = performance.now();
    const { logitsNCHW, mask } = tf.tidy(() => {
      const x = tf.tensor4d(pixels.data, pixels.shape);
      const logits = model.forward(x).logits; // NHWC, stride 4
      const up = tf.image.resizeBilinear(logits, [image.height, image.width], false, true);
      return {
        logitsNCHW: tf.transpose(logits, [0, 3, 1, 2]),
        mask: tf.argMax(twoClassLogits(up, opts.threshold), 3),
      };
    });
    const logitsData = (await logitsNCHW.data()) as Float32Array;
    const maskData = (await mask.data()) as Int32Array;
    const shape = logitsNCHW.shape as [1, number, number, number];
    tf.dispose([logitsNCHW, mask]);
    if (opts.verbose) log(`forward + upsampling: ${((performance.now() - t1) / 1000).toFixed(2)} s`);

    const counts = new Array<number>(numLabels).fill(0);
    for (const k of maskData) counts[k]++;
    const labelMap = { data: maskData, width: image.width, height: image.height };
    if (opts.logits) await writeNpy(opts.logits, { dtype: 'float32', shape, data: logitsData });
    if (opts.mask) await writeMaskPNG(opts.mask, labelMap);
    if (opts.overlay) {
      const palette = makePalette(numLabels);
      const blended = overlay(image, labelMap, palette, opts.alpha ?? 0.5);
      // Long label lists only show the classes present.
      const present = numLabels > 20 ? counts.flatMap((n, k) => (n > 0 ? [k] : [])) : undefined;
      await writePNG(opts.overlay, await withLegend(blended, legendEntries(id2label, palette, present)));
    }
    if (opts.verbose) log(`total: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    return {
      backend,
      width: image.width,
      height: image.height,
      numLabels,
      labels: Array.from({ length: numLabels }, (_, k) => id2label[k] ?? String(k)),
      logits: { data: logitsData, shape },
      mask: maskData,
      counts,
      notes,
    };
  } finally {
    model.dispose();
  }
}

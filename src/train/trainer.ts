/**
 * The training loop: seeded batches of augmented crops, AdamW with SegFormer's schedule, gradient accumulation
 * and clipping, sliding-window validation, crash-safe checkpoints and exact resume.
 *
 * Reproducibility: every random draw of step s (which images, which crops, which augmentations, dropout) comes
 * from generators seeded by (seed, s), so a resumed run sees exactly what an uninterrupted one would.
 */

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../core/atomic-write.ts';
import { argmaxLabels, slidingWindowProbabilities } from '../core/sliding.ts';
import type { tf } from '../engine/index.ts';
import { ConfusionMatrix } from '../metrics/index.ts';
import type { SegformerPresetName } from '../models/segformer/config.ts';
import { copyEncoderWeights } from '../models/segformer/encoder-weights.ts';
import {
  labelClasses,
  loadSegformer,
  Segformer,
  saveSegformer,
  segformerPreset,
  trainingPreprocessorConfig,
} from '../models/segformer/index.ts';
import { segformerKeys } from '../models/segformer/keys.ts';
import { tileModelOf } from '../models/segformer/tile-model.ts';
import { AdamW, type ParamGroup } from '../optim/adamw.ts';
import { commitFolder, readPointer } from '../optim/checkpoint.ts';
import { loopSettings, runTrainingLoop, startRun } from '../optim/loop.ts';
import { fractionOf, listPairs, loadPair, type NamedSample, splitNames } from '../patching/pairs.ts';
import {
  checkSlideLabels,
  labelledPatches,
  readSlideDataset,
  slideDatasetFrom,
  slideName,
  splitSlides,
} from '../patching/slide-dataset.ts';
import type { TrainConfig } from './config.ts';
import { buildLoss } from './loss.ts';
import { type OnlinePatches, openOnlinePatches, type SamplerState } from './online-patches.ts';
import { autoWorkers, GradientWorkers } from './parallel.ts';
import { writeRunPictures } from './report.ts';
import { type ShardContext, shardContextKeys, shardGradients } from './step.ts';

export interface TrainOptions {
  /** Continue from `<out>/checkpoints/latest.json` if it exists. */
  resume?: boolean;
  /** Stop (after saving) once this step is reached, as if interrupted: for tests and time-boxed runs. */
  stopAtStep?: number;
  /** Quiet: no progress bar. */
  quiet?: boolean;
  /** In-memory samples instead of `data` folders (e.g. patches streamed from slides with weak labels). */
  samples?: { train: NamedSample[]; val: NamedSample[] };
}

export interface TrainResult {
  out: string;
  step: number;
  best: { metric: string; value: number; step: number } | null;
  lastVal: Record<string, unknown> | null;
}

export type { LogRecord } from '../optim/metrics-log.ts';

const PREPROCESSOR = trainingPreprocessorConfig();

function paramGroups(model: Segformer, cfg: TrainConfig): ParamGroup[] {
  const trainable = new Set(model.trainableVariables());
  const groups = {
    enc: new Map<string, tf.Variable>(),
    encNoDecay: new Map<string, tf.Variable>(),
    dec: new Map<string, tf.Variable>(),
    decNoDecay: new Map<string, tf.Variable>(),
  };
  for (const [key, v] of model.namedWeights()) {
    if (!trainable.has(v)) continue;
    const isDecoder = key.startsWith(segformerKeys.decoderPrefix);
    const noDecay = cfg.optim.noDecayOnNorms && /norm/.test(key);
    const g = isDecoder
      ? noDecay
        ? groups.decNoDecay
        : groups.dec
      : noDecay
        ? groups.encNoDecay
        : groups.enc;
    g.set(key, v);
  }
  const m = cfg.optim.decoderLrMultiplier;
  return [
    { params: groups.enc },
    { params: groups.encNoDecay, weightDecay: 0 },
    { params: groups.dec, lrMultiplier: m },
    { params: groups.decNoDecay, lrMultiplier: m, weightDecay: 0 },
  ];
}

/** Sliding-window validation over whole images; returns metrics and the predicted label maps of the first few. */
export async function validate(
  model: Segformer,
  samples: NamedSample[],
  cfg: TrainConfig,
): Promise<{ metrics: Record<string, unknown>; previews: { sample: NamedSample; pred: Uint8Array }[] }> {
  const numLabels = labelClasses(cfg.model.numLabels);
  const cm = new ConfusionMatrix(numLabels, { ignoreIndex: cfg.data.ignoreIndex });
  const previews: { sample: NamedSample; pred: Uint8Array }[] = [];
  const tm = tileModelOf(model, cfg.model.threshold);
  for (const s of samples) {
    const probs = await slidingWindowProbabilities(tm, s.image, s.width, s.height, {
      tile: Math.min(cfg.val.tile, Math.max(s.width, s.height)),
      overlap: cfg.val.overlap,
    });
    const pred = argmaxLabels(probs, numLabels);
    cm.update(pred, s.mask);
    if (previews.length < cfg.val.overlays) previews.push({ sample: s, pred });
  }
  const r = cm.compute();
  return {
    metrics: {
      mIoU: r.mIoU,
      mDice: r.mDice,
      aAcc: r.aAcc,
      mcc: r.mcc,
      iou: r.iou,
      dice: r.dice,
      // Foreground scores of a two-class (or one-logit) model: what binary segmentation papers report.
      ...(numLabels === 2 ? { fgDice: r.dice[1] ?? null, fgIoU: r.iou[1] ?? null } : {}),
    },
    previews,
  };
}

/** The images/ and masks/ folders of a config. */
export function trainingFolders(cfg: TrainConfig): { imagesDir: string; masksDir: string } {
  const imagesDir = cfg.data.images ?? (cfg.data.dir ? join(cfg.data.dir, 'images') : undefined);
  const masksDir = cfg.data.masks ?? (cfg.data.dir ? join(cfg.data.dir, 'masks') : undefined);
  if (!imagesDir || !masksDir) {
    throw new Error('config: data.dir (with images/ and masks/) or data.images + data.masks is required');
  }
  return { imagesDir, masksDir };
}

interface TrainData {
  trainSamples: NamedSample[];
  valSamples: NamedSample[];
  split: { train: string[]; val: string[]; fraction?: number; left?: string[] };
  /** Slides read online every step (then trainSamples is empty). */
  online?: OnlinePatches;
}

/**
 * Patches and masks read from slides with annotations, split by slide (seeded): training patches fresh every step
 * from the sampler (`data.patches: online`, default) or `patchesPerSlide` patches per slide drawn once
 * (`data.patches: once`); validation: grid patches of each validation slide, read once.
 */
async function loadSlideData(cfg: TrainConfig, log: (m: string) => void): Promise<TrainData> {
  const ds =
    typeof cfg.data.slides === 'string'
      ? await readSlideDataset(cfg.data.slides)
      : slideDatasetFrom(cfg.data.slides, 'config data.slides', process.cwd());
  const full = splitSlides(ds, cfg.seed);
  if (full.train.length === 0) throw new Error(`${ds.source}: no training slides left after the split`);
  const fraction = cfg.data.fraction ?? 1;
  const split = { train: fractionOf(full.train, fraction, cfg.seed, slideName), val: full.val };
  const left = full.train.filter((e) => !split.train.includes(e)).map(slideName);
  if (ds.patchSize < cfg.augment.crop) {
    throw new Error(
      `${ds.source}: patchSize ${ds.patchSize} is smaller than augment.crop ${cfg.augment.crop}`,
    );
  }
  checkSlideLabels(ds, labelClasses(cfg.model.numLabels), cfg.data.ignoreIndex);
  const collect = async (entries: typeof split.train, purpose: 'train' | 'eval') => {
    const out: NamedSample[] = [];
    for await (const p of labelledPatches(ds, entries, purpose, cfg.seed))
      out.push({ name: p.name, image: p.image, mask: p.mask, width: p.width, height: p.height });
    return out;
  };
  const t0 = performance.now();
  const once = cfg.data.patches === 'once';
  const online = once
    ? undefined
    : await openOnlinePatches(ds, split.train, {
        sampler: cfg.data.sampler,
        seed: cfg.seed,
        count: cfg.batchSize,
        accumulate: cfg.optim.accumulate,
      });
  try {
    const trainSamples = once ? await collect(split.train, 'train') : [];
    const valSamples = await collect(split.val, 'eval');
    log(
      `slides: ${split.train.length} training (${online ? online.description : `${trainSamples.length} patches read once`}), ` +
        `${split.val.length} validation (${valSamples.length} patches) of ${ds.patchSize} px, ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    return {
      trainSamples,
      valSamples,
      split: {
        train: split.train.map(slideName),
        val: split.val.map(slideName),
        ...(fraction < 1 ? { fraction, left } : {}),
      },
      online,
    };
  } catch (e) {
    await online?.close();
    throw e;
  }
}

async function loadFolderData(cfg: TrainConfig): Promise<TrainData> {
  const { imagesDir, masksDir } = trainingFolders(cfg);
  const pairs = await listPairs(imagesDir, masksDir);
  const names = pairs.map((p) => p.name);
  const split = cfg.data.val
    ? {
        train: names.filter((n) => !cfg.data.val!.includes(n)),
        val: names.filter((n) => cfg.data.val!.includes(n)),
      }
    : splitNames(names, cfg.data.valFraction, cfg.seed);
  if (split.train.length === 0)
    throw new Error(`${imagesDir}: no training images left after the validation split`);
  const fraction = cfg.data.fraction ?? 1;
  const kept = fractionOf(split.train, fraction, cfg.seed, (n) => n);
  const byName = new Map(pairs.map((p) => [p.name, p]));
  const load = (n: string) =>
    loadPair(byName.get(n)!, labelClasses(cfg.model.numLabels), cfg.data.ignoreIndex);
  return {
    trainSamples: await Promise.all(kept.map(load)),
    valSamples: await Promise.all(split.val.map(load)),
    split: {
      train: kept,
      val: split.val,
      ...(fraction < 1 ? { fraction, left: split.train.filter((n) => !kept.includes(n)) } : {}),
    },
  };
}

export async function buildModel(cfg: TrainConfig, log: (m: string) => void): Promise<Segformer> {
  const id2label =
    cfg.model.id2label ??
    (cfg.model.numLabels === 1
      ? { '0': 'foreground' }
      : Object.fromEntries(Array.from({ length: cfg.model.numLabels }, (_, i) => [String(i), `class_${i}`])));
  if (cfg.model.from) {
    const { model, report } = await loadSegformer(cfg.model.from, {
      numLabels: cfg.model.numLabels,
      allowPartial: true,
    });
    log(`model: ${cfg.model.from} (${JSON.stringify(report).slice(0, 200)})`);
    return model;
  }
  const config = segformerPreset(cfg.model.preset as SegformerPresetName, {
    numLabels: cfg.model.numLabels,
    id2label,
    label2id: Object.fromEntries(Object.entries(id2label).map(([k, v]) => [v, Number(k)])),
    ...(cfg.model.dropPathRate != null ? { drop_path_rate: cfg.model.dropPathRate } : {}),
    ...(cfg.model.classifierDropout != null ? { classifier_dropout_prob: cfg.model.classifierDropout } : {}),
    ...(cfg.model.overrides ?? {}),
  });
  const model = new Segformer(config, { seed: cfg.seed, init: cfg.model.init ?? 'hf' });
  if (cfg.model.encoder) {
    const n = await copyEncoderWeights(model, cfg.model.encoder);
    log(`encoder: ${n} tensors from ${cfg.model.encoder}`);
  }
  log(`model: SegFormer-${cfg.model.preset}, ${model.numParameters().toLocaleString('en')} parameters`);
  return model;
}

/**
 * Patches are a function of (seed, step), so the step is the sampler's whole state; what can differ is the sampler
 * itself or the grid (other slides, another patch size), and then the resumed run would not be exact.
 */
function checkSameSampler(dir: string, saved: SamplerState | null, now: SamplerState | null): void {
  if ((saved?.sampler ?? null) === (now?.sampler ?? null) && saved?.cells === now?.cells) return;
  const describe = (s: SamplerState | null) =>
    s ? `the ${s.sampler} sampler${s.cells ? ` over ${s.cells} grid cells` : ''}` : 'in-memory samples';
  throw new Error(
    `${dir}: the checkpoint was trained with ${describe(saved)}, the config now gives ${describe(now)}: resume with the same data settings`,
  );
}

/** The delivered model of a finished run (`<out>/model`): the best validated one, else the last. */
async function deliverModel(out: string, model: Segformer): Promise<void> {
  const bestPtr = await readPointer(out, 'best.json');
  const { model: finalModel } = bestPtr ? await loadSegformer(bestPtr.dir) : { model };
  try {
    await commitFolder(
      out,
      'model',
      'model.json',
      (dir) => saveSegformer(finalModel, dir, { preprocessor: PREPROCESSOR }),
      { from: bestPtr ? 'best' : 'last' },
    );
  } finally {
    if (finalModel !== model) finalModel.dispose();
  }
}

/**
 * Online patches read one micro-batch ahead: batch (step, k) is read while the one before it trains. Batches are
 * a function of (seed, step, k), so reading ahead changes timing only.
 */
class Prefetcher {
  private next: Promise<NamedSample[]> | null = null;
  private stopAt = 0;
  /** Time spent waiting for batches since the last `takeWait()`, in ms. */
  private waitMs = 0;

  constructor(
    private readonly online: OnlinePatches,
    private readonly accumulate: number,
  ) {}

  begin(start: number, stopAt: number): void {
    this.stopAt = stopAt;
    this.next = start < stopAt ? this.online.batch(start, 0) : null;
    this.next?.catch(() => {});
  }

  /** Batch (step, k), which must be the one read ahead; starts reading the following one. */
  async take(step: number, k: number): Promise<NamedSample[]> {
    const w0 = performance.now();
    const batch = await this.next!;
    this.waitMs += performance.now() - w0;
    const [nextStep, nextK] = k + 1 < this.accumulate ? [step, k + 1] : [step + 1, 0];
    this.next = nextStep < this.stopAt ? this.online.batch(nextStep, nextK) : null;
    this.next?.catch(() => {});
    return batch;
  }

  takeWait(): number {
    const w = this.waitMs;
    this.waitMs = 0;
    return w;
  }

  /** Waits out a read still in flight (its failure no longer matters). */
  async settle(): Promise<void> {
    await this.next?.catch(() => {});
  }
}

/** Loads every weight of `model` from the checkpoint folder `dir`. */
async function restoreWeights(model: Segformer, dir: string): Promise<void> {
  const { model: loaded } = await loadSegformer(dir);
  try {
    const src = loaded.namedWeights();
    for (const [key, v] of model.namedWeights()) {
      const s = src.get(key);
      if (!s) throw new Error(`${dir}: checkpoint lacks '${key}'`);
      v.assign(s);
    }
  } finally {
    loaded.dispose();
  }
}

export async function train(cfg: TrainConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  const { log, backend } = await startRun(cfg.out, opts.quiet);

  // Data
  const { trainSamples, valSamples, split, online } = opts.samples
    ? {
        trainSamples: opts.samples.train,
        valSamples: opts.samples.val,
        split: { train: opts.samples.train.map((s) => s.name), val: opts.samples.val.map((s) => s.name) },
      }
    : cfg.data.slides
      ? await loadSlideData(cfg, log)
      : await loadFolderData(cfg);
  if (!online) log(`data: ${trainSamples.length} training, ${valSamples.length} validation images`);
  await writeJsonAtomic(join(cfg.out, 'split.json'), split);
  await writeFile(join(cfg.out, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`);

  // Model, optimiser, loss
  const prefetch = online ? new Prefetcher(online, cfg.optim.accumulate) : null;
  let model: Segformer;
  try {
    model = await buildModel(cfg, log);
  } catch (e) {
    await online?.close();
    throw e;
  }
  const groups = paramGroups(model, cfg);
  const opt = new AdamW(groups, cfg.optim);
  const lossFn = buildLoss(cfg.loss, cfg.model.numLabels, cfg.data.ignoreIndex);
  const shard: ShardContext = { model, samples: trainSamples, cfg, loss: lossFn, ...shardContextKeys(model) };
  const threads = cfg.workers === 'auto' ? autoWorkers() : Math.max(1, cfg.workers);
  const workers =
    threads > 1 && cfg.batchSize > 1
      ? await GradientWorkers.start(
          Math.min(threads, cfg.batchSize) - 1,
          cfg,
          trainSamples,
          shard.keys,
          shard.variables,
          backend,
        )
      : null;
  if (workers) log(`data parallel: ${workers.size + 1} threads`);
  try {
    let best: TrainResult['best'] = null;
    let lastVal: Record<string, unknown> | null = null;
    const { history, stopAt } = await runTrainingLoop({
      label: 'train',
      ...loopSettings(cfg, opts),
      accumulate: cfg.optim.accumulate,
      opt,
      log,
      restoreWeights: (dir) => restoreWeights(model, dir),
      resumed: (state, dir) => {
        best = (state.best as TrainResult['best']) ?? null;
        checkSameSampler(
          dir,
          (state.sampler as SamplerState | undefined) ?? null,
          online?.state(state.step) ?? null,
        );
      },
      saveWeights: (dir) => saveSegformer(model, dir, { preprocessor: PREPROCESSOR }),
      state: (step) => ({ best, seed: cfg.seed, ...(online ? { sampler: online.state(step) } : {}) }),
      begin: (start, stopAt) => prefetch?.begin(start, stopAt),
      microBatch: async (step, k, acc) => {
        const batch = await prefetch?.take(step, k);
        const shards = (workers?.size ?? 0) + 1;
        workers?.publish(shard.variables);
        const others = workers?.run(step, k, shards, batch);
        // Awaited below; if this thread's own shard throws first (out of wasm memory), the workers' failure or
        // termination must not surface as an unhandled rejection (the wasm backend rethrows those as a crash).
        others?.catch(() => {});
        const own = shardGradients(shard, step, k, 0, shards, batch);
        acc.addLoss(own.loss);
        acc.addGradients(own.grads);
        if (others && workers) {
          for (const l of await others) acc.addLoss(l);
          workers.collect(acc.grads);
        }
      },
      intervalFields: (steps, intervalMs) => {
        // Mean wait for data per step over the logged interval, and its share of the interval's time.
        const wait = prefetch?.takeWait() ?? 0;
        return { dataWaitMs: wait / steps, dataWaitFraction: wait / Math.max(intervalMs, 1e-9) };
      },
      afterStep: async (done, metrics) => {
        if (!(done % cfg.valEvery === 0 || done === cfg.steps) || valSamples.length === 0) return;
        const { metrics: values, previews } = await validate(model, valSamples, cfg);
        await metrics.record({ type: 'val', step: done, ...values });
        const value = values[cfg.bestMetric] as number | null;
        if (value != null && (best == null || value > best.value)) {
          best = { metric: cfg.bestMetric, value, step: done };
          await commitFolder(
            cfg.out,
            'best',
            'best.json',
            (dir) => saveSegformer(model, dir, { preprocessor: PREPROCESSOR }),
            { ...best },
          );
        }
        await writeRunPictures(cfg.out, metrics.history, previews, done, labelClasses(cfg.model.numLabels));
        lastVal = values;
      },
    });
    if (stopAt === cfg.steps) {
      await deliverModel(cfg.out, model);
      await writeRunPictures(cfg.out, history, [], stopAt, labelClasses(cfg.model.numLabels));
    }
    return { out: cfg.out, step: stopAt, best, lastVal };
  } finally {
    // Worker threads keep the process alive: stop them on success and on error alike.
    await workers?.close();
    await prefetch?.settle();
    await online?.close();
    opt.dispose();
    model.dispose();
  }
}

/**
 * The training configuration (YAML or JSON; CLI flags override keys with dotted paths) and its defaults:
 * SegFormer's recipe (AdamW lr 6e-5, weight decay 0.01, poly power 1.0, decode head at 10× lr, linear warm-up).
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { lossEntry, trainingMode } from '../losses/registry.ts';
import type { SegformerInit } from '../models/segformer/index.ts';
import type { AugmentOptions } from '../patching/augment.ts';
import { ConfigChecks } from './config-checks.ts';

export interface LossSpec {
  /** dice | jaccard | tversky | focal | lovasz | mcc | bce | soft-bce | ce | soft-ce */
  name: string;
  weight?: number;
  /** Options passed to the loss factory (camelCase, as the losses module takes them). */
  [option: string]: unknown;
}

export interface TrainConfig {
  seed: number;
  out: string;
  model: {
    /** b0…b5, or a Hugging Face folder in `from`. */
    preset: string;
    from?: string;
    /** Encoder-only checkpoint (nvidia/mit-b* layout or `slideseg pretrain` output). */
    encoder?: string;
    /** 1: a binary model (one logit, sigmoid, foreground where σ > threshold); ≥ 2: softmax over classes. */
    numLabels: number;
    /** Foreground probability threshold of a one-logit model in validation (default 0.5). */
    threshold?: number;
    id2label?: Record<string, string>;
    dropPathRate?: number;
    /**
     * Fresh weights (no `from`/`encoder`): 'hf' (transformers' `_init_weights`, N(0, 0.02) everywhere) or 'nvlabs'
     * (the original MiT scheme for training from scratch: truncated normal linears, fan-out He init of the convs).
     */
    init?: SegformerInit;
    classifierDropout?: number;
    /** Any Hugging Face config field to override on the preset (e.g. a tiny `hidden_sizes` for tests). */
    overrides?: Record<string, unknown>;
  };
  data: {
    /** A folder holding images/ and masks/ (MoNuSeg layout). */
    dir?: string;
    images?: string;
    masks?: string;
    /**
     * Slides with annotations instead of folders: a slide data-set file (YAML/JSON, see
     * `src/patching/slide-dataset.ts`) or the same mapping inline; patches are read online, split by slide.
     */
    slides?: string | Record<string, unknown>;
    valFraction: number;
    /** Explicit split (names without extension); overrides valFraction. */
    val?: string[];
    ignoreIndex: number;
    /**
     * Train on a seeded subset of this share of the training images/slides (after the validation split, which
     * stays as it is); the subset is recorded in split.json.
     */
    fraction?: number;
    /**
     * Slides only: 'online' (default) reads every step's patches fresh from `sampler`; 'once' draws the data set's
     * patchesPerSlide patches per slide at the start and trains on them (small data).
     */
    patches?: 'online' | 'once';
    /** Slides, online: random | foreground-random | grid | multi-magnification (default from the data set). */
    sampler?: string;
  };
  augment: AugmentOptions;
  loss: LossSpec[];
  optim: {
    lr: number;
    weightDecay: number;
    betas: [number, number];
    eps: number;
    decoderLrMultiplier: number;
    /** No weight decay on norm parameters (mmseg's SegFormer recipe). */
    noDecayOnNorms: boolean;
    schedule: 'poly' | 'cosine' | 'constant';
    power: number;
    warmupSteps: number;
    warmupRatio: number;
    minLr: number;
    clipGradNorm: number | null;
    accumulate: number;
  };
  steps: number;
  batchSize: number;
  logEvery: number;
  valEvery: number;
  saveEvery: number;
  keepCheckpoints: number;
  bestMetric: string;
  /** Threads computing gradients in parallel (data parallel); 'auto' = one per core. */
  workers: number | 'auto';
  val: { tile: number; overlap: number; overlays: number };
}

export const DEFAULTS: TrainConfig = {
  seed: 0,
  out: 'runs/train',
  model: { preset: 'b0', numLabels: 2 },
  data: { valFraction: 0.2, ignoreIndex: 255 },
  augment: { crop: 256, scale: [0.5, 2.0], hflip: true, vflip: true, rot90: true, stainSigma: 0.05 },
  loss: [{ name: 'ce', weight: 1 }],
  optim: {
    lr: 6e-5,
    weightDecay: 0.01,
    betas: [0.9, 0.999],
    eps: 1e-8,
    decoderLrMultiplier: 10,
    noDecayOnNorms: true,
    schedule: 'poly',
    power: 1.0,
    warmupSteps: 0,
    warmupRatio: 1e-6,
    minLr: 0,
    clipGradNorm: null,
    accumulate: 1,
  },
  steps: 1000,
  batchSize: 8,
  logEvery: 10,
  valEvery: 200,
  saveEvery: 200,
  keepCheckpoints: 2,
  bestMetric: 'mDice',
  workers: 'auto',
  val: { tile: 512, overlap: 64, overlays: 2 },
};

export type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return v != null && typeof v === 'object' && !Array.isArray(v);
}

function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over))
    out[k] = isObject(v) && isObject(base[k]) ? merge(base[k] as Json, v) : v;
  return out;
}

/** Sets a dotted key (`optim.lr`) from a CLI string, parsing numbers, booleans and YAML/JSON values. */
export function setDotted(obj: Json, key: string, raw: string): void {
  const parts = key.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (!isObject(cur[p])) cur[p] = {};
    cur = cur[p] as Json;
  }
  let value: unknown = raw;
  try {
    value = parse(raw);
  } catch {
    // keep the string
  }
  cur[parts.at(-1)!] = value;
}

/**
 * Reads a YAML/JSON config file (optional), deep-merges `extra` over it, applies dotted `overrides`, then merges
 * the result over `defaults`. Errors name the file.
 */
export async function readConfig(
  defaults: object,
  path: string | undefined,
  overrides: [string, string][] = [],
  extra: Json = {},
): Promise<Json> {
  let user: Json = {};
  if (path) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new Error(`${path}: cannot read config (${(e as NodeJS.ErrnoException).code})`);
    }
    try {
      user = (parse(text) ?? {}) as Json;
    } catch (e) {
      throw new Error(`${path}: invalid YAML (${(e as Error).message.split('\n')[0]})`);
    }
    if (!isObject(user)) throw new Error(`${path}: the config must be a mapping of keys`);
  }
  user = merge(user, extra);
  for (const [k, v] of overrides) setDotted(user, k, v);
  return merge(defaults as Json, user);
}

export async function loadTrainConfig(
  path: string | undefined,
  overrides: [string, string][] = [],
): Promise<TrainConfig> {
  const cfg = (await readConfig(DEFAULTS, path, overrides)) as unknown as TrainConfig;
  validate(cfg, path ?? '<flags>');
  return cfg;
}

function validate(c: TrainConfig, src: string): void {
  const check = new ConfigChecks(src);
  const bad = (m: string) => check.bad(m);
  const posInt = (v: unknown, k: string) => check.posInt(v, k);
  check.run(c);
  posInt(c.model.numLabels, 'model.numLabels');
  posInt(c.augment.crop, 'augment.crop');
  posInt(c.optim.accumulate, 'optim.accumulate');
  check.learningRate(c.optim.lr);
  if (!Array.isArray(c.loss) || c.loss.length === 0)
    throw bad('loss must be a non-empty list of {name, weight}');
  // Names and modes are checked here, before any data is read: an unknown or mis-moded loss fails at once.
  for (const term of c.loss) {
    try {
      lossEntry(String(term?.name), trainingMode(c.model.numLabels));
    } catch (e) {
      throw bad((e as Error).message);
    }
  }
  if (c.data.fraction !== undefined && !(c.data.fraction > 0 && c.data.fraction <= 1))
    throw bad(`data.fraction must be in (0, 1], got ${JSON.stringify(c.data.fraction)}`);
  if ((c.data.sampler !== undefined || c.data.patches !== undefined) && !c.data.slides)
    throw bad(
      'data.sampler and data.patches apply to slides (data.slides / --data SLIDES.yaml), not to image folders',
    );
  if (c.data.patches !== undefined && c.data.patches !== 'online' && c.data.patches !== 'once')
    throw bad(`data.patches must be online or once, got ${JSON.stringify(c.data.patches)}`);
  if (c.model.threshold !== undefined && !(c.model.threshold > 0 && c.model.threshold < 1))
    throw bad(`model.threshold must be in (0, 1), got ${JSON.stringify(c.model.threshold)}`);
  if (c.model.init !== undefined && c.model.init !== 'hf' && c.model.init !== 'nvlabs')
    throw bad(`model.init must be hf or nvlabs, got ${JSON.stringify(c.model.init)}`);
  check.preset(c.model);
}

/**
 * The pretraining configuration (YAML or JSON; `--set key=value` overrides dotted keys) and its defaults:
 * SupCon with temperature 0.1 on two strongly augmented views of each patch, a 2-layer projection head to
 * 128-d, AdamW with a cosine schedule after a linear warm-up.
 */
import type { AugmentOptions } from '../patching/augment.ts';
import { type Json, readConfig } from './config.ts';
import { ConfigChecks } from './config-checks.ts';

/** Where patch labels come from: the mask's majority class, a CSV column, or nowhere (SimCLR). */
export type LabelSource = 'mask' | 'csv' | 'none';

export interface PretrainConfig {
  seed: number;
  out: string;
  model: {
    /** b0…b5 (with `overrides`), or a checkpoint folder in `from` (full SegFormer or encoder-only). */
    preset: string;
    from?: string;
    dropPathRate?: number;
    /** Any Hugging Face config field to override on the preset (e.g. a tiny `hidden_sizes` for tests). */
    overrides?: Record<string, unknown>;
  };
  data: {
    /** (a) A folder holding images/ and masks/ (MoNuSeg layout), or images + masks. */
    dir?: string;
    images?: string;
    masks?: string;
    /** Only these image names (without extension) from the folders. */
    names?: string[];
    /** Number of classes in the masks (labels ≥ it, other than ignoreIndex, are an error). */
    numLabels: number;
    ignoreIndex: number;
    /**
     * With mask labels: a patch whose share of non-background (label > 0) pixels reaches this fraction is
     * labelled 1, else 0 (e.g. nuclei-rich vs nuclei-poor); null keeps the plain majority class.
     */
    foregroundFraction: number | null;
    /** (b) Slides read online with a patch sampler, optionally with one annotation file per slide. */
    slides?: string[];
    annotations?: (string | null)[];
    classMap?: Record<string, number>;
    /** grid | random | foreground-random | foreground-grid | multi-magnification (grids walk once per epoch). */
    sampler: string;
    mpp?: number;
    /** Several resolutions (µm/px): multi-magnification sampling, one drawn per patch. */
    mpps?: number[];
    level?: number;
    minTissue: number;
    /** (c) A CSV of `image path,label` rows (paths relative to the CSV; a header row is allowed). */
    csv?: string;
  };
  /** Where labels come from; default: csv for a CSV, mask when masks/annotations exist, else none. */
  labels?: LabelSource;
  /** Patch side in pixels (the views are this size too). */
  patch: number;
  augment: Omit<AugmentOptions, 'crop'>;
  head: { hidden?: number; dim: number };
  loss: { temperature: number; baseTemperature?: number; contrastMode: 'all' | 'one'; variant: 'out' | 'in' };
  optim: {
    lr: number;
    weightDecay: number;
    betas: [number, number];
    eps: number;
    noDecayOnNorms: boolean;
    schedule: 'cosine' | 'poly' | 'constant';
    power: number;
    warmupSteps: number;
    warmupRatio: number;
    minLr: number;
    clipGradNorm: number | null;
  };
  steps: number;
  /** Patches per step (each gives two views, so the encoder sees 2 × batchSize images). */
  batchSize: number;
  logEvery: number;
  saveEvery: number;
  keepCheckpoints: number;
}

export const PRETRAIN_DEFAULTS: PretrainConfig = {
  seed: 0,
  out: 'runs/pretrain',
  model: { preset: 'b0' },
  data: {
    numLabels: 2,
    ignoreIndex: 255,
    foregroundFraction: null,
    sampler: 'foreground-random',
    minTissue: 0.5,
  },
  patch: 128,
  // Strong, SimCLR-like: random zoom crops, flips, rotations, colour and H&E stain jitter.
  augment: {
    scale: [1.0, 1.6],
    hflip: true,
    vflip: true,
    rot90: true,
    brightness: 0.2,
    contrast: 0.3,
    saturation: 0.3,
    hue: 0.04,
    stainSigma: 0.1,
  },
  head: { dim: 128 },
  loss: { temperature: 0.1, contrastMode: 'all', variant: 'out' },
  optim: {
    lr: 3e-4,
    weightDecay: 0.05,
    betas: [0.9, 0.999],
    eps: 1e-8,
    noDecayOnNorms: true,
    schedule: 'cosine',
    power: 1.0,
    warmupSteps: 0,
    warmupRatio: 1e-3,
    minLr: 0,
    clipGradNorm: null,
  },
  steps: 1000,
  batchSize: 16,
  logEvery: 10,
  saveEvery: 200,
  keepCheckpoints: 2,
};

/** The label source a config resolves to. */
export function labelSource(c: PretrainConfig): LabelSource {
  if (c.labels) return c.labels;
  if (c.data.csv) return 'csv';
  if (c.data.dir || c.data.masks || (c.data.annotations && c.data.annotations.length > 0)) return 'mask';
  return 'none';
}

/** Builds a config from an optional file, dotted overrides and an optional object (for the API and tests). */
export async function loadPretrainConfig(
  path: string | undefined,
  overrides: [string, string][] = [],
  object: Json = {},
): Promise<PretrainConfig> {
  const cfg = (await readConfig(PRETRAIN_DEFAULTS, path, overrides, object)) as unknown as PretrainConfig;
  validatePretrainConfig(cfg, path ?? '<config>');
  return cfg;
}

export function validatePretrainConfig(c: PretrainConfig, src: string): void {
  const check = new ConfigChecks(src);
  const bad = (m: string) => check.bad(m);
  const posInt = (v: unknown, k: string) => check.posInt(v, k);
  check.run(c);
  posInt(c.patch, 'patch');
  posInt(c.head.dim, 'head.dim');
  posInt(c.logEvery, 'logEvery');
  posInt(c.saveEvery, 'saveEvery');
  posInt(c.data.numLabels, 'data.numLabels');
  if (c.head.hidden != null) posInt(c.head.hidden, 'head.hidden');
  if (c.patch < 32) throw bad(`patch must be at least 32 px (the encoder downsamples 32×), got ${c.patch}`);
  check.learningRate(c.optim.lr);
  if (!(c.loss.temperature > 0)) throw bad(`loss.temperature must be > 0, got ${c.loss.temperature}`);
  check.preset(c.model);
  const sources = [c.data.dir || c.data.images, c.data.slides?.length, c.data.csv].filter(Boolean).length;
  if (sources === 0) throw bad('data needs one source: data.dir (images/ + masks/), data.slides or data.csv');
  if (sources > 1)
    throw bad('data has more than one source: give only one of data.dir, data.slides, data.csv');
  const labels = labelSource(c);
  if (!['mask', 'csv', 'none'].includes(labels))
    throw bad(`labels must be mask, csv or none, got ${JSON.stringify(labels)}`);
  if (labels === 'csv' && !c.data.csv) throw bad('labels: csv needs data.csv');
  if (labels === 'mask' && c.data.slides && !c.data.annotations?.some(Boolean))
    throw bad('labels: mask with slides needs data.annotations (one file per slide)');
  if (labels === 'mask' && c.data.csv) throw bad('labels: mask does not apply to data.csv (use csv or none)');
  if (labels === 'none' && c.batchSize < 2) throw bad('SimCLR (labels: none) needs batchSize ≥ 2');
  const mpps = c.data.mpps;
  if (
    mpps !== undefined &&
    !(Array.isArray(mpps) && mpps.length > 0 && mpps.every((m) => typeof m === 'number' && m > 0))
  )
    throw bad(`data.mpps must be a non-empty list of positive µm/px values, got ${JSON.stringify(mpps)}`);
  if (mpps !== undefined && c.data.mpp !== undefined) throw bad('give data.mpp or data.mpps, not both');
  const f = c.data.foregroundFraction;
  if (f != null && !(f > 0 && f <= 1)) throw bad(`data.foregroundFraction must be in (0, 1], got ${f}`);
}

/** A small image/mask folder cut from MoNuSeg, and a tiny training config, for fast training tests. */
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { DEFAULTS, type TrainConfig } from '../src/train/config.ts';
import { fixture } from './fixtures.ts';

export const MONUSEG_NAMES = [
  'TCGA-18-5592-01Z-00-DX1',
  'TCGA-21-5784-01Z-00-DX1',
  'TCGA-38-6178-01Z-00-DX1',
];

/**
 * Copies `size`×`size` crops (≤ 128) of a few MoNuSeg images and masks into a temp folder (images/, masks/). The
 * source is the vendored 128-px crops at (300, 300) of the MoNuSeg images (test/fixtures/monuseg-crops), so the
 * pixels are those of the full images at the same place.
 */
export async function tinyDataset(size = 96): Promise<string> {
  if (size > 128) throw new Error(`tinyDataset: size ${size} > the vendored 128-px crops`);
  const dir = await mkdtemp(join(tmpdir(), 'slideseg-train-'));
  await mkdir(join(dir, 'images'));
  await mkdir(join(dir, 'masks'));
  for (const name of MONUSEG_NAMES) {
    const region = { left: 0, top: 0, width: size, height: size };
    await sharp(fixture('monuseg-crops', 'images', `${name}.png`))
      .extract(region)
      .png()
      .toFile(join(dir, 'images', `${name}.png`));
    await sharp(fixture('monuseg-crops', 'masks', `${name}.png`))
      .extract(region)
      .png()
      .toFile(join(dir, 'masks', `${name}.png`));
  }
  return dir;
}

/** A SegFormer small enough to train in seconds on the cpu backend. */
export function tinyConfig(data: string, out: string, extra: Partial<TrainConfig> = {}): TrainConfig {
  return {
    ...DEFAULTS,
    seed: 7,
    out,
    model: {
      preset: 'b0',
      numLabels: 2,
      overrides: {
        hidden_sizes: [8, 16, 24, 32],
        depths: [1, 1, 1, 1],
        num_attention_heads: [1, 1, 2, 2],
        decoder_hidden_size: 16,
      },
    },
    data: { dir: data, valFraction: 0, ignoreIndex: 255 },
    augment: {
      crop: 64,
      scale: [0.75, 1.25],
      hflip: true,
      vflip: true,
      rot90: true,
      stainSigma: 0.05,
      brightness: 0.1,
    },
    loss: [
      { name: 'dice', weight: 1 },
      { name: 'ce', weight: 1 },
    ],
    optim: { ...DEFAULTS.optim, lr: 1e-3, warmupSteps: 1, clipGradNorm: 1.0 },
    steps: 4,
    batchSize: 2,
    logEvery: 1,
    valEvery: 1000,
    saveEvery: 1,
    // Two gradient threads whatever the machine, so data-parallel training is what the tests exercise.
    workers: 2,
    ...extra,
  };
}

/**
 * Online patches vs the gradient step: trains SegFormer-B0 for a few steps on the MoNuSeg images used as slides
 * (label-image entries, 0.25 µm/px, patches at 0.5 µm/px, random and grid samplers) and reports the share of each
 * step spent waiting for data (`dataWaitFraction` of metrics.jsonl): the next batch is read while the current one
 * trains, so it should stay well under 5 %.
 *
 *   npx tsx bench/train-data-wait.ts [--steps 12] [--batch 8] [--crop 256] [--sampler random,grid]
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { ready } from '../src/engine/index.ts';
import { DEFAULTS, type TrainConfig } from '../src/train/config.ts';
import { train } from '../src/train/trainer.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '12' },
    batch: { type: 'string', default: '8' },
    crop: { type: 'string', default: '256' },
    sampler: { type: 'string', default: 'random,grid' },
    monuseg: {
      type: 'string',
      default: join(import.meta.dirname, '..', '..', 'shared', 'fixtures', 'monuseg'),
    },
  },
});
const backend = await ready();
const work = await mkdtemp(join(tmpdir(), 'bench-data-wait-'));
const images = (await readdir(join(values.monuseg, 'images'))).filter((f) => f.endsWith('.tif')).sort();
const slides = join(work, 'slides.yaml');
await writeFile(
  slides,
  stringify({
    slides: images.map((f, i) => ({
      slide: join(values.monuseg, 'images', f),
      mask: join(values.monuseg, 'masks', `${basename(f, '.tif')}.png`),
      split: i < 2 ? 'val' : 'train',
    })),
    slideMpp: 0.25,
    mpp: 0.5,
    patchSize: Number(values.crop),
    region: 'all',
    evalPatchesPerSlide: 1,
  }),
);
console.log(
  `backend ${backend}, ${images.length} MoNuSeg images as slides, batch ${values.batch}, crop ${values.crop}`,
);
for (const sampler of values.sampler.split(',')) {
  const cfg: TrainConfig = {
    ...DEFAULTS,
    out: join(work, sampler),
    data: { ...DEFAULTS.data, slides, sampler },
    augment: { ...DEFAULTS.augment, crop: Number(values.crop), scale: [1, 1] },
    loss: [{ name: 'dice' }, { name: 'ce' }],
    steps: Number(values.steps),
    batchSize: Number(values.batch),
    logEvery: 1,
    valEvery: 100000,
    saveEvery: 100000,
  };
  await train(cfg, { quiet: true });
  const log = (await readFile(join(cfg.out, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => r.type === 'train')
    .slice(1); // the first step waits for the first batch: nothing was read ahead of it
  const wait = log.reduce((a, r) => a + r.dataWaitMs, 0) / log.length;
  const fraction = log.reduce((a, r) => a + r.dataWaitFraction, 0) / log.length;
  const stepMs = 1000 / log.at(-1).stepsPerSec;
  console.log(
    `${sampler.padEnd(8)} step ${stepMs.toFixed(0)} ms, data wait ${wait.toFixed(1)} ms/step = ${(100 * fraction).toFixed(2)} % of the step (steps 2..${cfg.steps})`,
  );
}
await rm(work, { recursive: true, force: true });

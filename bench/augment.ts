/**
 * Cost of building one training batch (seeded crop/scale, flips, rot90, colour and stain jitter, normalisation)
 * next to the training step it feeds: the recipe's augmentation on MoNuSeg images, batch 8 at 256 px. Each
 * gradient thread builds its own shard, so this cost is split over the threads as the step is.
 *
 *   npx tsx bench/augment.ts [--batches 20] [--config recipes/monuseg-b0.yaml] [--data ../shared/fixtures/monuseg]
 */
import { parseArgs } from 'node:util';
import { ready } from '../src/engine/index.ts';
import { listPairs, loadPair } from '../src/patching/pairs.ts';
import { loadTrainConfig } from '../src/train/config.ts';
import { makeBatch } from '../src/train/step.ts';

const { values } = parseArgs({
  options: {
    batches: { type: 'string', default: '20' },
    config: { type: 'string', default: 'recipes/monuseg-b0.yaml' },
    data: { type: 'string', default: '../shared/fixtures/monuseg' },
  },
});
await ready('wasm');
const cfg = await loadTrainConfig(values.config, [['data.dir', values.data]]);
const pairs = (await listPairs(`${values.data}/images`, `${values.data}/masks`)).slice(0, 8);
const samples = await Promise.all(pairs.map((p) => loadPair(p, cfg.model.numLabels, cfg.data.ignoreIndex)));
const n = Number(values.batches);
makeBatch(samples, cfg, 0, 0).x.dispose(); // warm-up
const times: number[] = [];
for (let s = 1; s <= n; s++) {
  const t = performance.now();
  const { x, y } = makeBatch(samples, cfg, s, 0);
  times.push(performance.now() - t);
  x.dispose();
  y.dispose();
}
times.sort((a, b) => a - b);
const med = times[times.length >> 1]!;
console.log(
  JSON.stringify({
    batch: cfg.batchSize,
    crop: cfg.augment.crop,
    medianMsPerBatch: Number(med.toFixed(1)),
    p90Ms: Number(times[Math.floor(times.length * 0.9)]!.toFixed(1)),
  }),
);

/**
 * The trainer's real step — seeded augmented batch, SegFormer-B0 forward/backward with Dice + CE, AdamW — at
 * batch 8 on 256×256 crops, with 1 and with N gradient threads (data parallel), next to PyTorch's training step
 * (`bench/segformer_torch.py --train-batch 8`, Debian python3-torch) in the same run.
 *
 *   npx tsx bench/train-step.ts [--runs 3] [--threads 1,2] [--batch 8] [--torch-threads 2]
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { tuneMalloc } from '../src/core/malloc-tuning.ts';
import { ready, tf } from '../src/engine/index.ts';
import { Segformer, segformerPreset } from '../src/models/segformer/index.ts';
import { AdamW } from '../src/optim/adamw.ts';
import type { Sample } from '../src/patching/augment.ts';
import { DEFAULTS, type TrainConfig } from '../src/train/config.ts';
import { buildLoss } from '../src/train/loss.ts';
import { GradientWorkers } from '../src/train/parallel.ts';
import { type ShardContext, shardContextKeys, shardGradients } from '../src/train/step.ts';

// As the CLI does (core/malloc-tuning.ts); SLIDESEG_MALLOC_TUNING=0 measures glibc's defaults.
process.stderr.write(`glibc malloc tuning (as the CLI): ${tuneMalloc() ? 'on' : 'off'}\n`);

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1,2' },
    batch: { type: 'string', default: '8' },
    'torch-threads': { type: 'string', default: '2' },
    'skip-torch': { type: 'boolean' },
  },
});
const runs = Number(values.runs);
const batch = Number(values.batch);
const here = dirname(fileURLToPath(import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

// Synthetic 512×512 "images" with blob masks: the step's cost does not depend on the pixel values.
function syntheticSamples(n: number): Sample[] {
  return Array.from({ length: n }, (_, k) => {
    const w = 512;
    const image = new Uint8Array(w * w * 3);
    const mask = new Uint8Array(w * w);
    for (let i = 0; i < w * w; i++) {
      const x = i % w;
      const y = Math.floor(i / w);
      const inside = ((x + 37 * k) % 64) ** 2 + ((y + 11 * k) % 64) ** 2 < 400;
      mask[i] = inside ? 1 : 0;
      image.set(inside ? [90, 40, 140] : [230, 180, 210], i * 3);
    }
    return { image, mask, width: w, height: w };
  });
}

async function ourStep(threads: number): Promise<number> {
  const backend = await ready('wasm');
  const cfg: TrainConfig = {
    ...DEFAULTS,
    model: { preset: 'b0', numLabels: 2 },
    augment: { ...DEFAULTS.augment, crop: 256 },
    loss: [
      { name: 'dice', weight: 1 },
      { name: 'ce', weight: 1 },
    ],
    // One wasm heap holds 4 GB, about 6 crops of 256 px for B0's backward: one thread accumulates micro-batches.
    batchSize: threads === 1 ? batch / 2 : batch,
    optim: { ...DEFAULTS.optim, accumulate: threads === 1 ? 2 : 1 },
    workers: threads,
  };
  const samples = syntheticSamples(4);
  const model = new Segformer(segformerPreset('b0', { numLabels: 2 }), { seed: 0 });
  const ctx: ShardContext = {
    model,
    samples,
    cfg,
    loss: buildLoss(cfg.loss, 2, 255),
    ...shardContextKeys(model),
  };
  const opt = new AdamW([{ params: new Map(ctx.keys.map((k, i) => [k, ctx.variables[i]!])) }], { lr: 6e-5 });
  const workers =
    threads > 1
      ? await GradientWorkers.start(threads - 1, cfg, samples, ctx.keys, ctx.variables, backend)
      : null;
  const shards = threads;
  const times: number[] = [];
  for (let step = 0; step <= runs; step++) {
    const t0 = performance.now();
    const grads = new Map<string, tf.Tensor>();
    for (let k = 0; k < cfg.optim.accumulate; k++) {
      workers?.publish(ctx.variables);
      const others = workers?.run(step, k, shards);
      const own = shardGradients(ctx, step, k, 0, shards);
      for (const [key, g] of own.grads) {
        const prev = grads.get(key);
        grads.set(key, prev ? prev.add(g) : g);
        if (prev) tf.dispose([prev, g]);
      }
      if (others && workers) {
        await others;
        workers.collect(grads);
      }
    }
    opt.step(grads);
    for (const g of grads.values()) g.dispose();
    const ms = performance.now() - t0;
    if (step > 0) times.push(ms); // step 0 warms up kernels and heaps
    process.stderr.write(`  slideseg ${threads} thread(s): step ${step} ${ms.toFixed(0)} ms\n`);
  }
  await workers?.close();
  opt.dispose();
  model.dispose();
  tf.disposeVariables();
  return median(times);
}

const rows: [string, number][] = [];
for (const t of values.threads!.split(',').map(Number))
  rows.push([`slideseg wasm, ${t} gradient thread(s)`, await ourStep(t)]);
if (!values['skip-torch']) {
  const py = spawnSync(
    '/usr/bin/python3',
    [
      join(here, 'segformer_torch.py'),
      '--threads',
      values['torch-threads']!,
      '--runs',
      String(runs),
      '--train-batch',
      String(batch),
      '--skip-forward',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  if (py.status !== 0) throw new Error(`segformer_torch.py failed (${py.status})`);
  const torch = JSON.parse(py.stdout.trim().split('\n').pop()!);
  rows.push([`PyTorch ${torch.torch} eager, ${torch.threads} threads`, torch.train_step_256_ms]);
}
const ref = rows.at(-1)![1];
console.log(`\nSegFormer-B0 training step, batch ${batch}, 256×256 (median of ${runs})\n`);
console.log('| implementation | ms/step | vs last row |\n|---|---:|---:|');
for (const [name, ms] of rows) console.log(`| ${name} | ${ms.toFixed(0)} | ${(ms / ref).toFixed(2)}× |`);

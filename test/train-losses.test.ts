/**
 * Every loss of the registry trains: a tiny SegFormer takes a few AdamW steps with the trainer's own step code on a
 * fixed batch of MoNuSeg crops, and the loss of that batch goes down, for one-logit (binary) and two-logit
 * (multiclass) models wherever the loss is defined; a loss in the wrong mode is refused before training.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import { LOSSES, type TrainingMode } from '../src/losses/index.ts';
import { AdamW, applyGradients } from '../src/optim/adamw.ts';
import { listPairs, loadPair, type NamedSample } from '../src/patching/pairs.ts';
import { buildLoss } from '../src/train/loss.ts';
import { makeBatch, type ShardContext, shardContextKeys, shardGradients } from '../src/train/step.ts';
import { buildModel } from '../src/train/trainer.ts';
import { needs } from './fixtures.ts';
import { tinyConfig, tinyDataset } from './train-helpers.ts';

const skip = needs(['monuseg']);
let data: string;
let samples: NamedSample[];
before(async () => {
  if (skip) return;
  await ready('cpu');
  data = await tinyDataset(64);
  const pairs = await listPairs(`${data}/images`, `${data}/masks`);
  samples = await Promise.all(pairs.map((p) => loadPair(p, 2, 255)));
});
after(async () => {
  if (data) await rm(data, { recursive: true, force: true });
});

/** Options that make a loss's non-default branch run (Tversky 0.3/0.7 as in the survey, the paper MCC, …). */
const OPTIONS: Record<string, Record<string, unknown>> = {
  tversky: { alpha: 0.3, beta: 0.7 },
  focal: { gamma: 2, alpha: 0.25 },
  'soft-bce': { smoothFactor: 0.05 },
};

async function lossDrop(
  mode: TrainingMode,
  terms: { name: string; [k: string]: unknown }[],
  steps = 5,
  lr = 5e-3,
) {
  const numLabels = mode === 'binary' ? 1 : 2;
  const cfg = tinyConfig(data, '/nonexistent', { batchSize: 2, workers: 1 });
  cfg.model.numLabels = numLabels;
  cfg.augment = { crop: 64, hflip: false, vflip: false, rot90: false, stainSigma: 0 };
  cfg.optim = { ...cfg.optim, lr, accumulate: 1 };
  const model = await buildModel(cfg, () => {});
  const loss = buildLoss(terms, numLabels, cfg.data.ignoreIndex);
  const ctx: ShardContext = { model, samples, cfg, loss, ...shardContextKeys(model) };
  const params = new Map(ctx.keys.map((k, i) => [k, ctx.variables[i]!]));
  const opt = new AdamW([{ params }], { lr: cfg.optim.lr, weightDecay: 0 });
  // Step 0's batch every time: the loss of one fixed batch is what must go down.
  const evalLoss = () => {
    const { x, y } = makeBatch(samples, cfg, 0, 0);
    const value = tf.tidy(() => {
      const logits = model.forward(x, { training: false }).logits;
      return loss(tf.image.resizeBilinear(logits, [64, 64], false, true), y).dataSync()[0]!;
    });
    tf.dispose([x, y]);
    return value;
  };
  try {
    const first = evalLoss();
    for (let i = 0; i < steps; i++) applyGradients(opt, shardGradients(ctx, 0, 0, 0, 1).grads, 1.0);
    return { first, last: evalLoss() };
  } finally {
    opt.dispose();
    model.dispose();
  }
}

for (const mode of ['binary', 'multiclass'] as const) {
  describe(`every ${mode} loss lowers the loss of a tiny model`, { skip }, () => {
    const names = Object.entries(LOSSES)
      .filter(([, e]) => e.modes.includes(mode))
      .map(([n]) => n);
    test('the registry has the losses the issue lists', () => {
      const expected =
        mode === 'binary'
          ? ['bce', 'dice', 'focal', 'jaccard', 'lovasz', 'mcc', 'soft-bce', 'tversky']
          : ['ce', 'dice', 'focal', 'jaccard', 'lovasz', 'soft-ce', 'tversky'];
      assert.deepEqual([...names].sort(), expected);
    });
    for (const name of names) {
      test(name, async () => {
        // The Lovasz hinge starts on a plateau (every logit near 0, every error near 1): smaller, more steps.
        const [steps, lr] = name === 'lovasz' ? [10, 2e-3] : [5, 5e-3];
        const { first, last } = await lossDrop(mode, [{ name, ...(OPTIONS[name] ?? {}) }], steps, lr);
        assert.ok(Number.isFinite(first) && Number.isFinite(last), `${name}: ${first} → ${last}`);
        assert.ok(last < first, `${name} (${mode}): loss went from ${first} to ${last}`);
      });
    }
    if (mode === 'binary') {
      test('mcc, paper variant', async () => {
        const { first, last } = await lossDrop(mode, [{ name: 'mcc', variant: 'paper' }]);
        assert.ok(last < first, `mcc paper: ${first} → ${last}`);
      });
    }
    test('a weighted sum', async () => {
      const terms =
        mode === 'binary'
          ? [
              { name: 'dice', weight: 1 },
              { name: 'bce', weight: 0.5 },
            ]
          : [
              { name: 'dice', weight: 1 },
              { name: 'ce', weight: 0.5 },
            ];
      const { first, last } = await lossDrop(mode, terms);
      assert.ok(last < first, `weighted sum: ${first} → ${last}`);
    });
  });
}

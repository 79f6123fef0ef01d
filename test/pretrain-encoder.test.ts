/**
 * Contrastive pretraining end to end on a tiny MiT (hidden [8,16,24,32], depths [1,1,1,1]) and 3 MoNuSeg images:
 * gradients reach every encoder parameter, the loss falls on a fixed batch, the saved folder is exactly an
 * encoder checkpoint, `slideseg train --set model.encoder=DIR` starts from it, SimCLR runs, and runs are
 * reproducible (same seed, and stop + resume).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import { toFloat32 } from '../src/io/safetensors.ts';
import { readSafetensors } from '../src/io/safetensors-file.ts';
import { supConLoss } from '../src/losses/index.ts';
import {
  loadSegformer,
  Segformer,
  segformerParamSpecs,
  segformerPreset,
} from '../src/models/segformer/index.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { createRng } from '../src/patching/random.ts';
import { contrastiveFeatures, pretrain, singleKeyStages } from '../src/train/pretrain.ts';
import { loadPretrainConfig, type PretrainConfig } from '../src/train/pretrain-config.ts';
import { openPatchSource, twoViews } from '../src/train/pretrain-data.ts';
import { HEAD_FILE, ProjectionHead } from '../src/train/pretrain-head.ts';
import { fixture, needs } from './fixtures.ts';

const TINY = { hidden_sizes: [8, 16, 24, 32], depths: [1, 1, 1, 1], num_attention_heads: [1, 1, 1, 1] };
const NAMES = ['TCGA-18-5592-01Z-00-DX1', 'TCGA-21-5784-01Z-00-DX1', 'TCGA-21-5786-01Z-00-DX1'];

let tmp: string;
before(async () => {
  await ready();
  tmp = await mkdtemp(join(tmpdir(), 'slideseg-pretrain-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function tinyConfig(out: string, extra: Record<string, unknown> = {}): Promise<PretrainConfig> {
  return loadPretrainConfig(undefined, [], {
    seed: 3,
    out,
    model: { preset: 'b0', overrides: TINY },
    data: { dir: fixture('monuseg'), names: NAMES, foregroundFraction: 0.15 },
    patch: 64,
    batchSize: 4,
    steps: 2,
    logEvery: 1,
    saveEvery: 1,
    ...extra,
  });
}

/** The encoder tensors of a checkpoint folder as key → Float32Array (file layout). */
async function encoderTensors(dir: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const { tensors } = await readSafetensors(join(dir, 'model.safetensors'));
  return new Map(
    [...tensors]
      .filter(([k]) => k.startsWith('segformer.encoder.'))
      .map(([k, t]) => [k, { shape: t.shape, data: toFloat32(t, k) }]),
  );
}

const tinyModelConfig = () => segformerPreset('b0', TINY);

test('one step moves every encoder parameter (weight decay off) and writes an exact encoder checkpoint', {
  skip: needs(['monuseg']),
}, async () => {
  const cfg = await tinyConfig(join(tmp, 'one'), { steps: 1, optim: { weightDecay: 0 } });
  const result = await pretrain(cfg, { quiet: true });
  assert.equal(result.step, 1);
  assert.ok(result.encoder);
  assert.ok(Number.isFinite(result.lastLoss) && result.lastLoss! > 0);

  // Exactly the encoder keys of the model, with the Hugging Face (PyTorch layout) shapes.
  const specs = segformerParamSpecs(tinyModelConfig()).filter((s) => s.part === 'encoder');
  const saved = await encoderTensors(result.encoder);
  assert.deepEqual([...saved.keys()].sort(), specs.map((s) => s.key).sort());
  for (const s of specs) assert.deepEqual(saved.get(s.key)!.shape, s.fileShape, s.key);
  assert.ok([...saved.keys()].every((k) => k.startsWith('segformer.encoder.')));

  // The same seed builds the same initial model: every encoder tensor must differ from it after one step.
  assert.deepEqual(singleKeyStages(tinyModelConfig(), 64), []);
  assert.deepEqual(singleKeyStages(tinyModelConfig(), 48), [0, 1, 2]);
  const fresh = new Segformer(tinyModelConfig(), { seed: cfg.seed });
  const unchanged: string[] = [];
  for (const s of specs) {
    const v = fresh.namedWeights().get(s.key)!;
    const perm = s.layout === 'linear' ? [1, 0] : s.layout === 'conv' ? [3, 2, 0, 1] : null;
    const init = perm ? tf.tidy(() => tf.transpose(v, perm).dataSync()) : v.dataSync();
    const now = saved.get(s.key)!.data;
    if (s.layout === 'depthwise') {
      // [kh, kw, C, 1] → [C, 1, kh, kw]
      const t = tf.tidy(() => tf.transpose(v, [2, 3, 0, 1]).dataSync());
      if (t.every((x, i) => x === now[i])) unchanged.push(s.key);
      continue;
    }
    if (init.every((x, i) => x === now[i])) unchanged.push(s.key);
  }
  fresh.dispose();
  assert.deepEqual(unchanged, [], `parameters without gradient: ${unchanged.join(', ')}`);

  // Loads as an encoder-only checkpoint, with the head saved beside it.
  const { model, report } = await loadSegformer(result.encoder, { allowPartial: true });
  assert.equal(report.encoderOnly, true);
  assert.deepEqual(report.missing, []);
  assert.deepEqual(report.mismatched, []);
  assert.equal(report.loaded.length, specs.length);
  model.dispose();
  const head = await readSafetensors(join(result.encoder, HEAD_FILE));
  assert.deepEqual(head.tensors.get('head.0.weight')!.shape, [32, 32]);
  assert.deepEqual(head.tensors.get('head.2.weight')!.shape, [128, 32]);
});

test('the SupCon loss decreases over a few steps on a fixed batch', {
  skip: needs(['monuseg']),
}, async () => {
  const cfg = await tinyConfig(join(tmp, 'fixed'));
  const source = await openPatchSource(cfg);
  const rng = createRng(11);
  const patches = await source.draw(6, rng, 0);
  const { views, labels } = twoViews(patches, cfg, rng);
  assert.ok(labels);
  const x = tf.tensor4d(Float32Array.from(views.flatMap((v) => Array.from(v.image, (p) => p / 127.5 - 1))), [
    views.length,
    64,
    64,
    3,
  ]);
  const y = tf.tensor1d(labels, 'int32');
  const model = new Segformer({ ...tinyModelConfig(), drop_path_rate: 0 }, { seed: 1 });
  const head = new ProjectionHead(32, 32, 128, 2);
  const params = new Map<string, tf.Variable>();
  for (const [k, v] of model.namedWeights()) if (model.encoderVariables().includes(v)) params.set(k, v);
  for (const [k, v] of head.vars) params.set(k, v);
  const byName = new Map([...params].map(([k, v]) => [v.name, k]));
  const opt = new AdamW([{ params }], { lr: 2e-3, weightDecay: 0 });
  const loss = supConLoss({ temperature: 0.1, baseTemperature: 0.1 });
  const losses: number[] = [];
  for (let i = 0; i < 5; i++) {
    const { value, grads } = tf.variableGrads(
      () => loss(contrastiveFeatures(model, head, x, { training: false }), y),
      [...params.values()],
    );
    losses.push(value.dataSync()[0]!);
    value.dispose();
    opt.step(new Map(Object.entries(grads).map(([n, g]) => [byName.get(n)!, g])));
    tf.dispose(Object.values(grads));
  }
  tf.dispose([x, y]);
  opt.dispose();
  head.dispose();
  model.dispose();
  await source.close();
  assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
  assert.ok(losses[4]! < losses[0]! - 0.05, `loss did not fall: ${losses.map((l) => l.toFixed(4))}`);
});

test('same seed gives identical weights after 2 steps; 1 step + resume + 1 step gives the same too', {
  skip: needs(['monuseg']),
}, async () => {
  const a = await pretrain(await tinyConfig(join(tmp, 'a')), { quiet: true });
  const b = await pretrain(await tinyConfig(join(tmp, 'b')), { quiet: true });
  const c1 = await tinyConfig(join(tmp, 'c'));
  const stopped = await pretrain(c1, { quiet: true, stopAtStep: 1 });
  assert.equal(stopped.encoder, null);
  const c = await pretrain(c1, { quiet: true, resume: true });
  const ta = await encoderTensors(a.encoder!);
  for (const other of [b, c]) {
    const tb = await encoderTensors(other.encoder!);
    for (const [k, v] of ta) assert.deepEqual(tb.get(k)!.data, v.data, `${other.out}: ${k}`);
    const ha = await readSafetensors(join(a.encoder!, HEAD_FILE));
    const hb = await readSafetensors(join(other.encoder!, HEAD_FILE));
    for (const [k, t] of ha.tensors) assert.deepEqual(hb.tensors.get(k)!.bytes, t.bytes, k);
  }
  // A different seed gives different weights (the comparison above can fail).
  const d = await pretrain(await tinyConfig(join(tmp, 'd'), { seed: 4 }), { quiet: true });
  const td = await encoderTensors(d.encoder!);
  const key = 'segformer.encoder.patch_embeddings.0.proj.weight';
  assert.notDeepEqual(td.get(key)!.data, ta.get(key)!.data);
});

test('SimCLR mode (labels: none) runs with a finite loss', { skip: needs(['monuseg']) }, async () => {
  const cfg = await tinyConfig(join(tmp, 'simclr'), { labels: 'none' });
  const r = await pretrain(cfg, { quiet: true });
  assert.equal(r.step, 2);
  assert.ok(Number.isFinite(r.lastLoss) && r.lastLoss! > 0);
});

test('slideseg train --set model.encoder=DIR starts from the pretrained encoder', {
  skip: needs(['monuseg']),
}, async () => {
  const enc = await pretrain(await tinyConfig(join(tmp, 'for-train'), { steps: 1 }), { quiet: true });
  // A 3-image data folder for training (links to the fixtures, nothing copied).
  const { mkdir, symlink } = await import('node:fs/promises');
  const data = join(tmp, 'data');
  await mkdir(join(data, 'images'), { recursive: true });
  await mkdir(join(data, 'masks'), { recursive: true });
  for (const n of NAMES) {
    await symlink(fixture('monuseg', 'images', `${n}.tif`), join(data, 'images', `${n}.tif`));
    await symlink(fixture('monuseg', 'masks', `${n}.png`), join(data, 'masks', `${n}.png`));
  }
  const run = join(tmp, 'train-run');
  const { command: trainCommand } = await import('../src/cli/commands/train.ts');
  const code = await trainCommand.run([
    '--data',
    data,
    '--out',
    run,
    '--steps',
    '1',
    '--quiet',
    '--set',
    `model.encoder=${enc.encoder}`,
    '--set',
    `model.overrides=${JSON.stringify(TINY)}`,
    '--set',
    'batchSize=2',
    '--set',
    'augment.crop=64',
    '--set',
    'data.valFraction=0',
    '--set',
    'workers=1',
    // A negligible step: the trained encoder must still equal the pretrained one.
    '--set',
    'optim.lr=1e-12',
  ]);
  assert.equal(code, 0);
  const pretrained = await encoderTensors(enc.encoder!);
  const trained = await encoderTensors(join(run, 'model'));
  const fresh = await encoderTensors(join(tmp, 'one', 'encoder'));
  let maxDiff = 0;
  for (const [k, v] of pretrained) {
    const t = trained.get(k)!.data;
    for (let i = 0; i < t.length; i++) maxDiff = Math.max(maxDiff, Math.abs(t[i]! - v.data[i]!));
  }
  assert.ok(maxDiff < 1e-6, `trained encoder differs from the pretrained one by ${maxDiff}`);
  // ...and it is not what a from-scratch model (or another run) would have.
  const key = 'segformer.encoder.block.3.0.mlp.dense2.weight';
  assert.notDeepEqual(trained.get(key)!.data, fresh.get(key)!.data);
});

/**
 * Training configuration: YAML + dotted overrides merged over the defaults, validation errors naming the file, and
 * the fresh-weight scheme reaching the model (the original MiT init gives the depthwise convs He-scaled weights).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ready } from '../src/engine/index.ts';
import { loadTrainConfig } from '../src/train/config.ts';
import { buildModel } from '../src/train/trainer.ts';
import { tinyConfig } from './train-helpers.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slideseg-config-'));
});
after(async () => rm(dir, { recursive: true, force: true }));

test('YAML and --set overrides merge over the defaults', async () => {
  const file = join(dir, 'train.yaml');
  await writeFile(file, 'steps: 30\nmodel: { init: nvlabs, numLabels: 3 }\noptim: { lr: 0.001 }\n');
  const cfg = await loadTrainConfig(file, [
    ['optim.warmupSteps', '5'],
    ['data.slides', 'slides.yaml'],
  ]);
  assert.equal(cfg.steps, 30);
  assert.equal(cfg.model.init, 'nvlabs');
  assert.equal(cfg.model.numLabels, 3);
  assert.equal(cfg.model.preset, 'b0', 'default kept');
  assert.equal(cfg.optim.lr, 0.001);
  assert.equal(cfg.optim.warmupSteps, 5);
  assert.equal(cfg.optim.weightDecay, 0.01, 'default kept');
  assert.equal(cfg.data.slides, 'slides.yaml');
});

test('bad values fail naming the file', async () => {
  const file = join(dir, 'bad.yaml');
  await writeFile(file, 'model: { init: xavier }\n');
  await assert.rejects(loadTrainConfig(file), /bad\.yaml: model\.init must be hf or nvlabs, got "xavier"/);
  await writeFile(file, 'steps: 0\n');
  await assert.rejects(loadTrainConfig(file), /bad\.yaml: steps must be a positive integer/);
  await writeFile(file, 'data: { fraction: 1.5 }\n');
  await assert.rejects(loadTrainConfig(file), /bad\.yaml: data\.fraction must be in \(0, 1\], got 1\.5/);
  await writeFile(file, 'data: { dir: x, sampler: grid }\n');
  await assert.rejects(loadTrainConfig(file), /bad\.yaml: data\.sampler and data\.patches apply to slides/);
  await writeFile(file, 'loss: [{ name: mcc }]\n');
  await assert.rejects(
    loadTrainConfig(file),
    /^Error: .*bad\.yaml: loss 'mcc' is not defined for a multiclass model \(it is binary only; valid here: ce, soft-ce, dice, jaccard, tversky, focal, lovasz\)$/,
  );
  await writeFile(file, 'model: { numLabels: 1, threshold: 1 }\nloss: [{ name: bce }]\n');
  await assert.rejects(loadTrainConfig(file), /bad\.yaml: model\.threshold must be in \(0, 1\)/);
});

test('model.init nvlabs gives depthwise convs fan-out He weights, hf gives N(0, 0.02)', async () => {
  await ready('cpu');
  const std = async (init: 'hf' | 'nvlabs') => {
    const cfg = tinyConfig('', join(dir, init));
    cfg.model.init = init;
    const model = await buildModel(cfg, () => {});
    const w = model.namedWeights().get('segformer.encoder.block.0.0.mlp.dwconv.dwconv.weight')!;
    const v = Array.from(w.dataSync() as Float32Array);
    model.dispose();
    return Math.sqrt(v.reduce((a, b) => a + b * b, 0) / v.length);
  };
  const hf = await std('hf');
  const nv = await std('nvlabs');
  assert.ok(Math.abs(hf - 0.02) < 0.005, `hf ${hf}`);
  assert.ok(Math.abs(nv - Math.sqrt(2 / 9)) < 0.08, `nvlabs ${nv} (He, fan-out 3×3)`);
});

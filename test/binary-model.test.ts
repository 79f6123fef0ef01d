/**
 * A one-logit (binary) SegFormer end to end: trains with the MCC loss (validation reports foreground Dice), saves a
 * Hugging Face checkpoint with one label, predicts foreground exactly where σ(logit) > 0.5, evaluates as
 * background/foreground with the same scores as a confusion matrix built from predict's mask, exports to ONNX within
 * 1e-4 of TF.js, and segments a slide.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { ready, tf } from '../src/engine/index.ts';
import { evaluate } from '../src/evaluate/segmentation.ts';
import { inferSlide } from '../src/infer/index.ts';
import { predict } from '../src/infer/predict.ts';
import { ConfusionMatrix } from '../src/metrics/index.ts';
import { loadSegformer } from '../src/models/segformer/index.ts';
import { exportSegformerOnnx, OnnxSegmenter } from '../src/onnx/index.ts';
import { train } from '../src/train/trainer.ts';
import { needs, ROOT } from './fixtures.ts';
import { MONUSEG_NAMES, tinyConfig, tinyDataset } from './train-helpers.ts';

const skip = needs(['monuseg']);
let data: string;
let work: string;
let modelDir: string;

before(async () => {
  if (skip) return;
  await ready('cpu');
  data = await tinyDataset(96);
  work = await mkdtemp(join(tmpdir(), 'slideseg-binary-'));
  const out = join(work, 'run');
  const cfg = tinyConfig(data, out, {
    steps: 3,
    valEvery: 3,
    loss: [{ name: 'mcc', variant: 'paper' }],
    workers: 1,
  });
  cfg.model.numLabels = 1;
  cfg.data = { ...cfg.data, val: [MONUSEG_NAMES[0]!] };
  await train(cfg, { quiet: true });
  modelDir = join(out, 'model');
});
after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
  if (data) await rm(data, { recursive: true, force: true });
});

test('training a one-logit model logs foreground Dice and saves num_labels 1', { skip }, async () => {
  const log = (await readFile(join(work, 'run', 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const val = log.find((r) => r.type === 'val');
  assert.ok(val, 'a validation record');
  assert.equal(val.dice.length, 2, 'background and foreground');
  assert.equal(val.fgDice, val.dice[1]);
  const config = JSON.parse(await readFile(join(modelDir, 'config.json'), 'utf8'));
  assert.deepEqual(Object.keys(config.id2label), ['0']);
  const { model } = await loadSegformer(modelDir);
  assert.deepEqual(model.namedWeights().get('decode_head.classifier.weight')!.shape.slice(0, 1), [1]);
  model.dispose();
});

test('predict labels foreground where σ(logit) > 0.5; evaluate scores it as background/foreground', {
  skip,
}, async () => {
  const name = MONUSEG_NAMES[0]!;
  const image = join(data, 'images', `${name}.png`);
  const r = await predict({ model: modelDir, image, log: () => {} });
  assert.equal(r.numLabels, 2);
  assert.deepEqual(r.labels, ['background', 'foreground']);
  assert.equal(r.logits.shape[1], 1);
  // Predict's mask against σ of its own logits, upsampled the same way.
  const up = tf.tidy(() => {
    const nhwc = tf.transpose(tf.tensor4d(r.logits.data, r.logits.shape), [0, 2, 3, 1]) as tf.Tensor4D;
    return tf.image.resizeBilinear(nhwc, [r.height, r.width], false, true).dataSync() as Float32Array;
  });
  let fg = 0;
  for (let i = 0; i < up.length; i++) {
    const expected = 1 / (1 + Math.exp(-up[i]!)) > 0.5 ? 1 : 0;
    assert.equal(r.mask[i], expected, `pixel ${i}`);
    fg += expected;
  }
  assert.equal(r.counts[1], fg);
  // A threshold moves the decision: at 0.999999 nothing is foreground unless σ(z) exceeds it.
  const strictPredict = await predict({ model: modelDir, image, log: () => {}, threshold: 0.999999 });
  const above = up.filter((z) => 1 / (1 + Math.exp(-z)) > 0.999999).length;
  assert.equal(strictPredict.counts[1], above);

  // evaluate (tile = whole image, no overlap) against a confusion matrix of predict's mask.
  const { data: gt } = await sharp(join(data, 'masks', `${name}.png`))
    .extractChannel(0)
    .raw()
    .toBuffer({ resolveWithObject: true });
  const cm = new ConfusionMatrix(2, { ignoreIndex: 255 }).update(Uint8Array.from(r.mask), new Uint8Array(gt));
  const expected = cm.compute();
  const evalDir = join(work, 'eval');
  await rm(evalDir, { recursive: true, force: true });
  const { mkdir, copyFile } = await import('node:fs/promises');
  await mkdir(join(evalDir, 'images'), { recursive: true });
  await mkdir(join(evalDir, 'masks'), { recursive: true });
  await copyFile(image, join(evalDir, 'images', `${name}.png`));
  await copyFile(join(data, 'masks', `${name}.png`), join(evalDir, 'masks', `${name}.png`));
  const result = await evaluate(modelDir, {
    images: join(evalDir, 'images'),
    masks: join(evalDir, 'masks'),
    tile: 96,
    overlap: 0,
    quiet: true,
  });
  assert.equal(result.numLabels, 2);
  assert.deepEqual(
    result.classes.map((c) => c.name),
    ['background', 'foreground'],
  );
  assert.ok(
    Math.abs((result.classes[1]!.dice ?? Number.NaN) - expected.dice[1]!) < 1e-9,
    `${result.classes[1]!.dice} vs ${expected.dice[1]}`,
  );
  assert.ok(Math.abs(result.mIoU - expected.mIoU) < 1e-9);
  assert.ok(result.mcc != null);
  // A threshold of ~1 leaves no foreground.
  const strict = await evaluate(modelDir, {
    images: join(evalDir, 'images'),
    masks: join(evalDir, 'masks'),
    tile: 96,
    overlap: 0,
    threshold: 0.999999,
    quiet: true,
  });
  assert.ok(strict.classes[1]!.support > 0);
  assert.equal(
    strict.matrix.reduce((a, row) => a + row[1]!, 0),
    0,
    'no pixel predicted foreground',
  );
});

test('ONNX export of a one-logit model matches TF.js within 1e-4', { skip }, async () => {
  const onnxPath = join(work, 'binary.onnx');
  await exportSegformerOnnx(modelDir, onnxPath);
  const dims: [number, number, number, number] = [2, 3, 64, 80];
  const pixels = Float32Array.from(
    { length: dims.reduce((a, b) => a * b, 1) },
    (_, i) => Math.sin(i * 0.37) * 2,
  );
  const seg = await OnnxSegmenter.load(onnxPath, { device: 'cpu' });
  const onnx = await seg.run(pixels, dims);
  await seg.release();
  const { model } = await loadSegformer(modelDir);
  const tfjs = tf.tidy(() => {
    const nhwc = tf.transpose(tf.tensor4d(pixels, dims), [0, 2, 3, 1]) as tf.Tensor4D;
    return tf.transpose(model.forward(nhwc).logits, [0, 3, 1, 2]).dataSync() as Float32Array;
  });
  model.dispose();
  assert.deepEqual(onnx.dims, [2, 1, 16, 20]);
  let maxAbs = 0;
  for (let i = 0; i < tfjs.length; i++) maxAbs = Math.max(maxAbs, Math.abs(tfjs[i]! - onnx.data[i]!));
  assert.ok(maxAbs <= 1e-4, `max |ONNX - TF.js| = ${maxAbs}`);
});

test('a one-logit model segments a slide (ONNX Runtime) into background and foreground', {
  skip,
}, async () => {
  const summary = await inferSlide(join(ROOT, 'samples', 'cmu-1-small-region.svs'), {
    model: modelDir,
    out: join(work, 'infer'),
    mpp: 4,
    tile: 128,
    overlap: 32,
    chunkSize: 128,
    tissue: 'all',
    log: null,
  });
  assert.deepEqual(summary.classes, ['background', 'foreground']);
  const covered = Object.values(summary.areas).reduce((a, v) => a + v.pixels, 0);
  assert.equal(covered + summary.unlabelledPixels, summary.grid.width * summary.grid.height);
  assert.equal(summary.unlabelledPixels, 0);
});

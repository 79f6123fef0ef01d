/**
 * `evaluate` on MoNuSeg crops with the 2-label tiny SegFormer: the JSON metrics must equal a confusion matrix
 * computed here from an independent re-run of the model, the report must list every class, the overlays must
 * exist at image size for the worst and best images in order, and bad inputs must fail naming the file.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { argmaxLabels, slidingWindowProbabilities } from '../src/core/sliding.ts';
import { evaluate } from '../src/evaluate/index.ts';
import { ConfusionMatrix } from '../src/metrics/index.ts';
import { loadSegformer } from '../src/models/segformer/index.ts';
import { tileModelOf } from '../src/models/segformer/tile-model.ts';
import { fixture, needs, ROOT } from './fixtures.ts';

const MODEL = fixture('segformer', 'segformer-tiny-odd');
const NAMES = ['TCGA-18-5592-01Z-00-DX1', 'TCGA-21-5784-01Z-00-DX1', 'TCGA-B0-5698-01Z-00-DX1'];
const W = 150;
const H = 120;
let dir: string;

/** Crops (so the test runs fast) of three MoNuSeg images and masks, written as PNG into a temp folder. */
before(async () => {
  if (needs(['monuseg'])) return; // the tests skip with the reason
  dir = await mkdtemp(join(tmpdir(), 'slideseg-eval-'));
  for (const [i, name] of NAMES.entries()) {
    const region = { left: 100 + 200 * i, top: 300, width: W, height: H };
    await sharp(fixture('monuseg', 'images', `${name}.tif`))
      .extract(region)
      .png()
      .toFile(join(dir, `img-${name}.png`));
    await sharp(fixture('monuseg', 'masks', `${name}.png`))
      .extract(region)
      .png()
      .toFile(join(dir, `mask-${name}.png`));
  }
  const { mkdir, rename } = await import('node:fs/promises');
  await mkdir(join(dir, 'images'));
  await mkdir(join(dir, 'masks'));
  for (const name of NAMES) {
    await rename(join(dir, `img-${name}.png`), join(dir, 'images', `${name}.png`));
    await rename(join(dir, `mask-${name}.png`), join(dir, 'masks', `${name}.png`));
  }
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function rawRGB(path: string): Promise<Uint8Array> {
  return new Uint8Array(await sharp(path).removeAlpha().raw().toBuffer());
}
async function rawMask(path: string): Promise<Uint8Array> {
  return new Uint8Array(await sharp(path).extractChannel(0).raw().toBuffer());
}

test('metrics equal an independent confusion matrix; report, overlays and ranking hold', {
  skip: needs(['monuseg']),
}, async () => {
  const overlays = join(dir, 'overlays');
  const r = await evaluate(MODEL, {
    images: join(dir, 'images'),
    masks: join(dir, 'masks'),
    tile: 64,
    overlap: 16,
    numWorst: 1,
    overlays,
    quiet: true,
  });
  // Independent re-run: the model, the fixture's ImageNet normalisation, the same window.
  const { model } = await loadSegformer(MODEL);
  const cm = new ConfusionMatrix(2, { ignoreIndex: 255, perImage: true });
  for (const name of NAMES) {
    const img = await rawRGB(join(dir, 'images', `${name}.png`));
    const probs = await slidingWindowProbabilities(tileModelOf(model), img, W, H, { tile: 64, overlap: 16 });
    cm.update(argmaxLabels(probs, 2), await rawMask(join(dir, 'masks', `${name}.png`)));
  }
  model.dispose();
  const want = cm.compute();
  assert.deepEqual(r.matrix, want.matrix);
  assert.equal(r.pixels, NAMES.length * W * H);
  for (const c of [0, 1]) {
    assert.ok(Math.abs(r.classes[c]!.iou! - want.iou[c]!) < 1e-12);
    assert.ok(Math.abs(r.classes[c]!.dice! - want.dice[c]!) < 1e-12);
    assert.ok(Math.abs(r.classes[c]!.precision! - want.precision[c]!) < 1e-12);
    assert.ok(Math.abs(r.classes[c]!.recall! - want.recall[c]!) < 1e-12);
  }
  assert.ok(Math.abs(r.mIoU - want.mIoU) < 1e-12 && Math.abs(r.aAcc - want.aAcc) < 1e-12);
  assert.ok(Math.abs(r.mcc! - want.mcc) < 1e-12);
  // Per image: the foreground Dice of each image's own matrix.
  for (const [i, s] of r.perImage.entries()) {
    assert.equal(s.name, NAMES[i]);
    assert.ok(Math.abs(s.dice - want.perImage![i]!.dice[1]!) < 1e-12);
  }
  const dice = new Map(r.perImage.map((s) => [s.name, s.dice]));
  const sorted = [...r.perImage].sort((a, b) => a.dice - b.dice);
  assert.deepEqual(r.worst, [sorted[0]!.name]);
  assert.deepEqual(r.best, [sorted.at(-1)!.name]);
  assert.ok(dice.get(r.worst[0]!)! <= dice.get(r.best[0]!)!);
  assert.equal(r.overlayFiles.length, 2);
  assert.match(r.overlayFiles[0]!, /worst-1-/);
  assert.match(r.overlayFiles[1]!, /best-1-/);
  for (const f of r.overlayFiles) {
    const meta = await sharp(f).metadata();
    assert.equal(meta.format, 'png');
    assert.deepEqual([meta.width, meta.height], [W, H]);
  }
});

test('CLI writes JSON and a Markdown report listing every class', { skip: needs(['monuseg']) }, async () => {
  const json = join(dir, 'out', 'metrics.json');
  const report = join(dir, 'out', 'report.md');
  await promisify(execFile)(
    process.execPath,
    [
      join(ROOT, 'bin', 'slideseg.js'),
      'evaluate',
      '--model',
      MODEL,
      '--images',
      join(dir, 'images'),
      '--masks',
      join(dir, 'masks'),
      '--tile',
      '64',
      '--overlap',
      '16',
      '--metrics',
      json,
      '--report',
      report,
    ],
    { cwd: ROOT },
  );
  const r = JSON.parse(await readFile(json, 'utf8'));
  assert.equal(r.images, 3);
  assert.equal(r.classes.length, 2);
  const md = await readFile(report, 'utf8');
  for (const c of r.classes)
    assert.match(md, new RegExp(`\\| ${c.index} \\| ${c.name} \\| ${c.iou.toFixed(4)} \\|`));
  for (const name of NAMES) assert.ok(md.includes(name));
  assert.match(md, new RegExp(`\\| mIoU \\| ${r.mIoU.toFixed(4)} \\|`));
});

test('bad input fails naming the file', { skip: needs(['monuseg']) }, async () => {
  const bad = join(dir, 'bad');
  const { mkdir, copyFile } = await import('node:fs/promises');
  const opts = { tile: 64, overlap: 16, quiet: true };
  // Missing mask for an image.
  await mkdir(join(bad, 'images'), { recursive: true });
  await mkdir(join(bad, 'masks'), { recursive: true });
  await copyFile(join(dir, 'images', `${NAMES[0]}.png`), join(bad, 'images', 'a.png'));
  await copyFile(join(dir, 'images', `${NAMES[1]}.png`), join(bad, 'images', 'b.png'));
  await copyFile(join(dir, 'masks', `${NAMES[0]}.png`), join(bad, 'masks', 'a.png'));
  await assert.rejects(
    evaluate(MODEL, { images: join(bad, 'images'), masks: join(bad, 'masks'), ...opts }),
    /b\.png: no mask named b\.png/,
  );
  // Mask size mismatch.
  await sharp(Buffer.alloc(40 * 30, 0), { raw: { width: 40, height: 30, channels: 1 } })
    .png()
    .toFile(join(bad, 'masks', 'b.png'));
  await assert.rejects(
    evaluate(MODEL, { images: join(bad, 'images'), masks: join(bad, 'masks'), ...opts }),
    /masks\/b\.png: mask is 40×30 but image/,
  );
  // Label out of range (class 7 in a 2-label model).
  await sharp(Buffer.alloc(W * H, 7), { raw: { width: W, height: H, channels: 1 } })
    .png()
    .toFile(join(bad, 'masks', 'b.png'));
  await assert.rejects(
    evaluate(MODEL, { images: join(bad, 'images'), masks: join(bad, 'masks'), ...opts }),
    /masks\/b\.png: label 7 at pixel 0 is outside \[0, 2\)/,
  );
});

test('--tta flip scores the flip-averaged probabilities', { skip: needs(['monuseg']) }, async () => {
  const opts = { images: join(dir, 'images'), masks: join(dir, 'masks'), tile: 64, overlap: 16, quiet: true };
  const r = await evaluate(MODEL, { ...opts, tta: 'flip' });
  assert.equal(r.tta, 'flip');
  const { model } = await loadSegformer(MODEL);
  const cm = new ConfusionMatrix(2, { ignoreIndex: 255 });
  for (const name of NAMES) {
    const img = await rawRGB(join(dir, 'images', `${name}.png`));
    const probs = await slidingWindowProbabilities(tileModelOf(model), img, W, H, {
      tile: 64,
      overlap: 16,
      tta: 'flip',
    });
    cm.update(argmaxLabels(probs, 2), await rawMask(join(dir, 'masks', `${name}.png`)));
  }
  model.dispose();
  assert.deepEqual(r.matrix, cm.compute().matrix);
  await assert.rejects(evaluate(MODEL, { ...opts, tta: 'spin' as never }), /tta must be none, flip or d4/);
});

/**
 * `eval-encoder` end to end: a nuclei-rich vs nuclei-poor patch set cut from MoNuSeg (label = nucleus
 * fraction above the median), the tiny SegFormer as a frozen MiT encoder, N seeded probe runs, the embedding
 * cache reused on a second run, reproducible results; and a probe that must learn trivially separable
 * embeddings from an ONNX "encoder" (global average pool = mean colour) on a CSV manifest.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { csvDataset, evalEncoder, readSample, statistic } from '../src/evaluate/index.ts';
import { GraphBuilder } from '../src/onnx/graph-builder.ts';
import { createRng } from '../src/patching/random.ts';
import { openSlide } from '../src/slide/index.ts';
import { fixture, needs } from './fixtures.ts';

const TINY = fixture('segformer', 'segformer-tiny-odd');
const IMAGES = ['TCGA-18-5592-01Z-00-DX1', 'TCGA-B0-5698-01Z-00-DX1'];
const P = 64;
let dir: string;
let nucleiSet: string;

before(async () => {
  if (needs(['monuseg'])) return; // the tests skip with the reason
  dir = await mkdtemp(join(tmpdir(), 'slideseg-evenc-'));
  nucleiSet = join(dir, 'nuclei');
  const patches: { name: string; rgb: Buffer; fraction: number }[] = [];
  for (const name of IMAGES) {
    const img = await sharp(fixture('monuseg', 'images', `${name}.tif`))
      .removeAlpha()
      .raw()
      .toBuffer();
    const mask = await sharp(fixture('monuseg', 'masks', `${name}.png`))
      .extractChannel(0)
      .raw()
      .toBuffer();
    for (let gy = 0; gy < 5; gy++) {
      for (let gx = 0; gx < 5; gx++) {
        const rgb = Buffer.alloc(P * P * 3);
        let fg = 0;
        for (let y = 0; y < P; y++) {
          const row = (200 + gy * 120 + y) * 1000 + 200 + gx * 120;
          img.copy(rgb, y * P * 3, row * 3, (row + P) * 3);
          for (let x = 0; x < P; x++) fg += mask[row + x]! > 0 ? 1 : 0;
        }
        patches.push({ name: `${name}-${gx}-${gy}`, rgb, fraction: fg / (P * P) });
      }
    }
  }
  const sorted = patches.map((p) => p.fraction).sort((a, b) => a - b);
  const median = (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  for (const p of patches) {
    const cls = p.fraction > median ? 'rich' : 'poor';
    await mkdir(join(nucleiSet, cls), { recursive: true });
    await sharp(p.rgb, { raw: { width: P, height: P, channels: 3 } })
      .png()
      .toFile(join(nucleiSet, cls, `${p.name}.png`));
  }
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('MiT encoder on nuclei-rich vs -poor patches: eva results, N runs, cache reuse, reproducible', {
  skip: needs(['monuseg']),
}, async () => {
  const out = join(dir, 'run');
  const opts = {
    data: nucleiSet,
    encoder: TINY,
    out,
    runs: 3,
    seed: 7,
    probe: { maxEpochs: 30, patience: 5, lr: 1e-2 },
    quiet: true,
  };
  const first = await evalEncoder(opts);
  assert.deepEqual(first.dataset.classes, ['poor', 'rich']);
  const { train, val, test: tst } = first.dataset.counts;
  assert.equal(train + val + tst, 50);
  assert.ok(val > 0 && tst > 0);
  assert.deepEqual(first.cache.computed, ['train', 'val', 'test']);
  for (const split of ['val', 'test'] as const) {
    const m = first.metrics[split][0]!;
    assert.deepEqual(Object.keys(m).sort(), [
      `${split}/accuracy`,
      `${split}/auroc`,
      `${split}/balanced_accuracy`,
      `${split}/macro_f1`,
    ]);
    for (const s of Object.values(m)) {
      assert.equal(s.values.length, 3);
      for (const v of s.values) assert.ok(v != null && v >= 0 && v <= 1, `${split} value ${v}`);
      assert.ok(s.mean! >= 0 && s.mean! <= 1 && s.stdev! >= 0);
      assert.deepEqual(s, statistic(s.values));
    }
  }
  // The manifest describes the cache.
  const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8'));
  assert.equal(manifest.encoderHash, first.encoder.hash);
  assert.equal(manifest.splits.train.count, train);
  assert.equal(manifest.splits.train.dim, 32); // last hidden size of the tiny MiT
  // Second run: same inputs → every split read from the cache, identical results.
  const second = await evalEncoder(opts);
  assert.deepEqual(second.cache.reused, ['train', 'val', 'test']);
  assert.deepEqual(second.cache.computed, []);
  assert.deepEqual(second.metrics, first.metrics);
  const saved = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
  assert.deepEqual(saved.metrics, JSON.parse(JSON.stringify(first.metrics)));
  // Another pooling is another encoder: the cache is rebuilt (4 stages concatenated: 8+16+24+32 dims).
  const multi = await evalEncoder({ ...opts, pooling: 'multi', runs: 1 });
  assert.deepEqual(multi.cache.computed, ['train', 'val', 'test']);
  assert.notEqual(multi.encoder.hash, first.encoder.hash);
  const m2 = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8'));
  assert.equal(m2.splits.train.dim, 80);
});

/** An ONNX "encoder": GlobalAveragePool over NCHW pixels, i.e. the normalised mean colour, [N, 3, 1, 1]. */
function meanColourOnnx(): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('pixel_values', ['N', 3, 'H', 'W']);
  g.node('GlobalAveragePool', [x], {}, 'features');
  g.output('features', ['N', 3, 1, 1]);
  return g.encode({ graphName: 'mean-colour', opset: 17 });
}

test('probe learns trivially separable embeddings (ONNX mean-colour encoder, CSV manifest)', {
  skip: needs(['monuseg']),
}, async () => {
  const data = join(dir, 'colour');
  await mkdir(data, { recursive: true });
  const rng = createRng(3);
  const rows = ['path,label,split'];
  const splits = ['train', 'train', 'train', 'val', 'test'];
  for (let i = 0; i < 60; i++) {
    const label = i % 2 === 0 ? 'dark' : 'light';
    const base = label === 'dark' ? 90 : 170;
    const px = Buffer.from(
      Array.from({ length: 16 * 16 * 3 }, () => Math.round(base + rng.uniform(-40, 40))),
    );
    await sharp(px, { raw: { width: 16, height: 16, channels: 3 } })
      .png()
      .toFile(join(data, `p${i}.png`));
    rows.push(`p${i}.png,${label},${splits[Math.floor(i / 2) % 5]}`);
  }
  await writeFile(join(data, 'manifest.csv'), `${rows.join('\n')}\n`);
  const onnx = join(dir, 'mean-colour.onnx');
  await writeFile(onnx, meanColourOnnx());
  const r = await evalEncoder({
    data: join(data, 'manifest.csv'),
    encoder: onnx,
    out: join(dir, 'colour-run'),
    runs: 2,
    probe: { maxEpochs: 200, patience: 20, lr: 0.05 },
    quiet: true,
  });
  assert.deepEqual(r.dataset.counts, { train: 36, val: 12, test: 12 });
  for (const split of ['val', 'test'] as const) {
    const m = r.metrics[split][0]!;
    assert.ok(m[`${split}/accuracy`]!.mean! >= 0.99, `${split} accuracy ${m[`${split}/accuracy`]!.mean}`);
    assert.ok(m[`${split}/auroc`]!.mean! >= 0.99);
  }
  const mlp = await evalEncoder({
    data: join(data, 'manifest.csv'),
    encoder: onnx,
    out: join(dir, 'colour-mlp'),
    runs: 1,
    probe: { head: 'mlp', hidden: 16, maxEpochs: 200, patience: 20, lr: 0.01 },
    quiet: true,
  });
  assert.ok(mlp.metrics.test[0]!['test/accuracy']!.mean! >= 0.99);
});

test('CSV slide regions read the slide; bad rows fail naming the line', {
  skip: needs(['monuseg']),
}, async () => {
  const svs = fixture('slides', 'cmu-1-small-region.svs');
  const csv = join(dir, 'regions.csv');
  await writeFile(csv, `${svs}#100,200,32,24,0,a,bogus\n`);
  await assert.rejects(csvDataset(csv), /regions\.csv:1: split must be train, val or test, got 'bogus'/);
  await writeFile(csv, `path,label,split\n${svs}#100,200,32,24,0,a,train,extra\n`);
  await assert.rejects(csvDataset(csv), /regions\.csv:2: expected path,label\[,split\]/);
  await writeFile(csv, `${svs}#100,200,0,24,a\n`);
  await assert.rejects(csvDataset(csv), /regions\.csv:1: slide region must be/);
  // Unquoted regions, with and without a level, and a quoted one.
  await writeFile(
    csv,
    `${svs}#100,200,32,24,a,train\n${svs}#300,400,32,24,0,b,val\n"${svs}#8,8,16,16,1",b,test\n`,
  );
  const ds = await csvDataset(csv);
  assert.deepEqual(ds.classes, ['a', 'b']);
  assert.deepEqual(
    ds.samples.map((x) => [x.region, x.label, x.split]),
    [
      [{ x: 100, y: 200, width: 32, height: 24, level: 0 }, 0, 'train'],
      [{ x: 300, y: 400, width: 32, height: 24, level: 0 }, 1, 'val'],
      [{ x: 8, y: 8, width: 16, height: 16, level: 1 }, 1, 'test'],
    ],
  );
  const s = ds.samples[0]!;
  const patch = await readSample(s);
  const slide = await openSlide(svs);
  const want = await slide.readRegion({ x: 100, y: 200, level: 0, width: 32, height: 24 });
  await slide.close();
  for (let i = 0; i < 32 * 24; i++)
    for (let c = 0; c < 3; c++) assert.equal(patch.data[i * 3 + c], want.data[i * 4 + c]);
});

test('segmentation with a frozen encoder: only the decode head trains, mIoU/Dice reported', {
  skip: needs(['monuseg']),
}, async () => {
  const { evalEncoderSegmentation } = await import('../src/evaluate/index.ts');
  const seg = join(dir, 'seg');
  await mkdir(join(seg, 'images'), { recursive: true });
  await mkdir(join(seg, 'masks'), { recursive: true });
  const names = ['TCGA-18-5592-01Z-00-DX1', 'TCGA-21-5784-01Z-00-DX1', 'TCGA-B0-5698-01Z-00-DX1'];
  for (const name of names) {
    const region = { left: 300, top: 300, width: 96, height: 96 };
    await sharp(fixture('monuseg', 'images', `${name}.tif`))
      .extract(region)
      .png()
      .toFile(join(seg, 'images', `${name}.png`));
    await sharp(fixture('monuseg', 'masks', `${name}.png`))
      .extract(region)
      .png()
      .toFile(join(seg, 'masks', `${name}.png`));
  }
  const r = await evalEncoderSegmentation({
    encoder: TINY,
    images: join(seg, 'images'),
    masks: join(seg, 'masks'),
    out: join(dir, 'seg-run'),
    steps: 8,
    batchSize: 2,
    crop: 64,
    lr: 1e-2,
    valFraction: 0.34,
    tile: 64,
    overlap: 16,
    quiet: true,
  });
  assert.equal(r.encoderChange, 0);
  assert.equal(r.losses.length, 8);
  assert.ok(r.losses.every(Number.isFinite));
  assert.equal(r.split.val.length, 1);
  assert.ok(r.mIoU >= 0 && r.mIoU <= 1 && r.mDice >= r.mIoU);
  const saved = JSON.parse(await readFile(join(dir, 'seg-run', 'results.json'), 'utf8'));
  assert.equal(saved.mDice, r.mDice);
});

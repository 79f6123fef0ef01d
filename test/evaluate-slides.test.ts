/**
 * Slides with annotations as data (`evaluate --data`, `train` with data.slides): the two MoNuSeg images that come
 * with their Aperio XML are opened as slides, masks are rasterised from the polygons, and the scores must equal
 * those of the folder path on the same pixels; patches, splits and bad data sets are checked too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { rasterize, readAnnotations } from '../src/annotations/index.ts';
import { evaluate } from '../src/evaluate/index.ts';
import { labelledPatches, readSlideDataset, splitSlides } from '../src/patching/slide-dataset.ts';
import { train } from '../src/train/trainer.ts';
import { fixture, needs, ROOT } from './fixtures.ts';
import { tinyConfig } from './train-helpers.ts';

const MODEL = fixture('segformer', 'segformer-tiny-odd');
const NAMES = ['TCGA-B0-5698-01Z-00-DX1', 'TCGA-B0-5710-01Z-00-DX1'];
const SIZE = 1000;
let dir: string;

function dataset(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    slides: NAMES.map((n) => ({
      slide: fixture('monuseg', 'images', `${n}.tif`),
      annotations: fixture('monuseg', 'annotations', `${n}.xml`),
    })),
    classes: { 'Annotation 1': 1 },
    level: 0,
    ...extra,
  };
}

async function writeDataset(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, JSON.stringify(dataset(extra)));
  return file;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slideseg-slides-'));
});
after(async () => rm(dir, { recursive: true, force: true }));

test('evaluate --data equals the folder evaluation of the same pixels, masks match the fixtures', {
  skip: needs(['monuseg']),
}, async () => {
  // Folder twin: the images as PNG (read by sharp, not our TIFF reader) and the polygons rasterised.
  await mkdir(join(dir, 'images'));
  await mkdir(join(dir, 'masks'));
  for (const n of NAMES) {
    await sharp(fixture('monuseg', 'images', `${n}.tif`))
      .png()
      .toFile(join(dir, 'images', `${n}.png`));
    const ann = await readAnnotations(fixture('monuseg', 'annotations', `${n}.xml`));
    const mask = rasterize(ann, { x: 0, y: 0, width: SIZE, height: SIZE });
    await sharp(Buffer.from(mask), { raw: { width: SIZE, height: SIZE, channels: 1 } })
      .png()
      .toFile(join(dir, 'masks', `${n}.png`));
    // The rasterised polygons are the fixture masks (Dice ≥ 0.99), so labels are not shifted or inverted.
    const want = new Uint8Array(
      await sharp(fixture('monuseg', 'masks', `${n}.png`))
        .extractChannel(0)
        .raw()
        .toBuffer(),
    );
    let inter = 0;
    let sum = 0;
    for (let i = 0; i < want.length; i++) {
      inter += want[i] === 1 && mask[i] === 1 ? 1 : 0;
      sum += (want[i] === 1 ? 1 : 0) + (mask[i] === 1 ? 1 : 0);
    }
    assert.ok((2 * inter) / sum > 0.99, `${n}: rasterised Dice ${(2 * inter) / sum}`);
  }
  const opts = { tile: 256, overlap: 32, quiet: true };
  const folders = await evaluate(MODEL, { images: join(dir, 'images'), masks: join(dir, 'masks'), ...opts });
  const overlays = join(dir, 'overlays');
  const slides = await evaluate(MODEL, {
    data: await writeDataset('whole.json', { patchSize: SIZE, region: 'all' }),
    ...opts,
    numWorst: 1,
    overlays,
  });
  assert.equal(slides.patches, 2);
  assert.equal(slides.images, 2);
  assert.deepEqual(slides.matrix, folders.matrix);
  assert.equal(slides.pixels, 2 * SIZE * SIZE);
  assert.ok(slides.classes[1]!.support > 0.2 * SIZE * SIZE, 'nuclei are labelled 1');
  assert.deepEqual(
    slides.perImage.map((s) => [s.name, s.dice]),
    folders.perImage.map((s) => [s.name, s.dice]),
  );
  assert.deepEqual(slides.worst, [`${folders.worst[0]}@0,0`]);
  assert.equal(slides.overlayFiles.length, 2);
  for (const f of slides.overlayFiles) {
    const meta = await sharp(f).metadata();
    assert.deepEqual([meta.width, meta.height], [SIZE, SIZE]);
  }
});

test('grid patches on the slides: count, names, per-slide grouping, split by slide', {
  skip: needs(['monuseg']),
}, async () => {
  const file = await writeDataset('grid.yaml', { patchSize: 256, region: 'all', evalPatchesPerSlide: 3 });
  const ds = await readSlideDataset(file);
  const seen: string[] = [];
  for await (const p of labelledPatches(ds, ds.slides, 'eval')) {
    assert.equal(p.image.length, 256 * 256 * 3);
    assert.equal(p.mask.length, 256 * 256);
    assert.ok(p.mask.every((v) => v === 0 || v === 1));
    seen.push(p.name);
  }
  // 3 of the 3×3 grid positions per slide (a seeded subset, the same on every read), 256 px apart.
  assert.equal(seen.length, 6);
  for (const [i, name] of seen.entries()) {
    const m = /^(.+)@(\d+),(\d+)$/.exec(name)!;
    assert.equal(m[1], NAMES[Math.floor(i / 3)]);
    for (const v of [Number(m[2]), Number(m[3])]) assert.ok(v % 256 === 0 && v <= 512, name);
  }
  assert.equal(new Set(seen).size, 6);
  const again: string[] = [];
  for await (const p of labelledPatches(ds, ds.slides, 'eval')) again.push(p.name);
  assert.deepEqual(again, seen);
  const r = await evaluate(MODEL, { data: file, tile: 128, overlap: 16, quiet: true });
  assert.equal(r.patches, 6);
  assert.equal(r.pixels, 6 * 256 * 256);
  assert.deepEqual(
    r.perImage.map((s) => s.name),
    NAMES,
  );
  const split = splitSlides({ ...ds, valFraction: 0.5 }, 3);
  assert.equal(split.val.length, 1);
  assert.equal(split.train.length, 1);
  assert.notEqual(split.val[0]!.slide, split.train[0]!.slide);
  assert.deepEqual(splitSlides({ ...ds, valFraction: 0.5 }, 3), split, 'seeded');
});

test('CLI evaluate --data writes JSON and a per-slide report', { skip: needs(['monuseg']) }, async () => {
  const file = await writeDataset('cli.yaml', { patchSize: 256, region: 'all', evalPatchesPerSlide: 1 });
  const json = join(dir, 'cli', 'metrics.json');
  const report = join(dir, 'cli', 'report.md');
  const args = ['evaluate', '--model', MODEL, '--data', file, '--tile', '128', '--overlap', '16'];
  await promisify(execFile)(
    process.execPath,
    [join(ROOT, 'bin', 'slideseg.js'), ...args, '--metrics', json, '--report', report],
    { cwd: ROOT },
  );
  const r = JSON.parse(await readFile(json, 'utf8'));
  assert.equal(r.patches, 2);
  const md = await readFile(report, 'utf8');
  assert.match(md, /## Per slide/);
  for (const n of NAMES) assert.ok(md.includes(`| ${n} |`));
});

test('train on slides with annotations: split by slide, online patches, validation', {
  skip: needs(['monuseg']),
}, async () => {
  const out = join(dir, 'run');
  const cfg = tinyConfig('', out, { steps: 2, valEvery: 2, saveEvery: 2 });
  cfg.data = {
    ...cfg.data,
    dir: undefined,
    slides: {
      ...dataset(),
      slides: NAMES.map((n, i) => ({
        slide: fixture('monuseg', 'images', `${n}.tif`),
        annotations: fixture('monuseg', 'annotations', `${n}.xml`),
        split: i === 0 ? 'val' : 'train',
      })),
      patchSize: 96,
      patchesPerSlide: 4,
      evalPatchesPerSlide: 2,
      region: 'all',
    },
  };
  cfg.batchSize = 2;
  cfg.workers = 1;
  const result = await train(cfg, { quiet: true });
  assert.equal(result.step, 2);
  const split = JSON.parse(await readFile(join(out, 'split.json'), 'utf8'));
  assert.deepEqual(split, { train: [NAMES[1]], val: [NAMES[0]] });
  const log = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const val = log.find((r) => r.type === 'val');
  assert.ok(val && Number.isFinite(val.mDice));
});

test('multi-magnification training patches: masks follow the polygons at every mpp', async () => {
  // A GeoJSON rectangle over the left half of the CC0 SVS (level-0 px), class 2; the right half is unannotated.
  const svs = join(ROOT, 'samples', 'cmu-1-small-region.svs');
  const half = 1110;
  const geo = join(dir, 'left.geojson');
  const rect = [
    [0, 0],
    [half, 0],
    [half, 2967],
    [0, 2967],
    [0, 0],
  ];
  await writeFile(
    geo,
    JSON.stringify({
      type: 'FeatureCollection',
      features: [
        {
          type: 'Feature',
          properties: { classification: { name: 'Tumor' } },
          geometry: { type: 'Polygon', coordinates: [rect] },
        },
      ],
    }),
  );
  const file = join(dir, 'multi.yaml');
  await writeFile(
    file,
    `slides: [{ slide: ${svs}, annotations: left.geojson }]\nclasses: { Tumor: 2 }\nmpp: [0.5, 1.0]\n` +
      'patchSize: 128\npatchesPerSlide: 24\nminTissue: 0.3\n',
  );
  const ds = await readSlideDataset(file);
  assert.equal(ds.slides[0]!.annotations, geo, 'relative to the data-set file');
  const mpps = new Set<number>();
  let checked = 0;
  for await (const p of labelledPatches(ds, ds.slides, 'train', 1)) {
    mpps.add(p.mpp!);
    const footprint = (128 * p.mpp!) / 0.499;
    if (p.x + footprint < half - 4) {
      assert.ok(
        p.mask.every((v) => v === 2),
        `${p.name} at ${p.mpp} µm/px lies left: all class 2`,
      );
      checked++;
    } else if (p.x > half + 4) {
      assert.ok(
        p.mask.every((v) => v === 0),
        `${p.name} lies right: all unannotated (0)`,
      );
      checked++;
    } else {
      // Straddling: the boundary column is where level-0 x crosses 1110.
      const col = Math.round(((half - p.x) * 128) / footprint);
      assert.equal(p.mask[0], 2);
      assert.equal(p.mask[127], 0);
      assert.equal(p.mask[Math.max(0, col - 2)], 2, p.name);
      assert.equal(p.mask[Math.min(127, col + 2)], 0, p.name);
      checked++;
    }
  }
  assert.deepEqual([...mpps].sort(), [0.5, 1.0]);
  assert.equal(checked, 24);
});

test('bad slide data sets fail naming the file and the problem', { skip: needs(['monuseg']) }, async () => {
  await assert.rejects(
    evaluate(MODEL, { data: await writeDataset('badclass.json', { classes: { tumour: 1 } }), quiet: true }),
    /TCGA-B0-5698-01Z-00-DX1\.xml: annotation label\(s\) "Annotation 1" have no class in .*badclass\.json/,
  );
  await assert.rejects(
    evaluate(MODEL, {
      data: await writeDataset('range.json', { classes: { 'Annotation 1': 5 } }),
      quiet: true,
    }),
    /range\.json: Annotation 1 is class 5, outside \[0, 2\) and not the ignore index 255/,
  );
  const missing = join(dir, 'missing.json');
  await writeFile(missing, JSON.stringify({ slides: [{ slide: 'nope.svs' }], level: 0 }));
  await assert.rejects(evaluate(MODEL, { data: missing, quiet: true }), /missing\.json: slide .*nope\.svs/);
  await assert.rejects(
    evaluate(MODEL, { data: await writeDataset('typo.json', { patchsize: 5 }), quiet: true }),
    /typo\.json: unknown key 'patchsize'/,
  );
  await assert.rejects(
    evaluate(MODEL, { data: await writeDataset('mpp.json', { level: undefined, mpp: 0.5 }), quiet: true }),
    /has no mpp/,
  );
  await assert.rejects(
    evaluate(MODEL, { data: join(dir, 'absent.yaml'), quiet: true }),
    /absent\.yaml: cannot read/,
  );
});

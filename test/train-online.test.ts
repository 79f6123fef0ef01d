/**
 * Online patches from slides, fresh every step: the grid sampler walks every cell exactly once per epoch (in a new
 * order each epoch), a seeded run stopped and resumed reads the same patches and ends with the same weights as one
 * run straight through, data-wait time is logged, the sampler state is in the checkpoint, `data.fraction` keeps a
 * seeded subset of the training slides, and `data.patches: once` still trains on a one-off sample.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { ready } from '../src/engine/index.ts';
import { fractionOf } from '../src/patching/pairs.ts';
import { labelledPatches, slideDatasetFrom } from '../src/patching/slide-dataset.ts';
import { openOnlinePatches } from '../src/train/online-patches.ts';
import { train } from '../src/train/trainer.ts';
import { fixture, needs, ROOT } from './fixtures.ts';
import { tinyConfig } from './train-helpers.ts';

const CMU = join(ROOT, 'samples', 'cmu-1-small-region.svs');
let work: string;
let geojson: string;

before(async () => {
  await ready('cpu');
  work = await mkdtemp(join(tmpdir(), 'slideseg-online-'));
  geojson = join(work, 'region.geojson');
  const ring = [
    [400, 500],
    [1600, 500],
    [1600, 2200],
    [400, 2200],
    [400, 500],
  ];
  await writeFile(
    geojson,
    JSON.stringify({
      type: 'FeatureCollection',
      features: [
        {
          type: 'Feature',
          properties: { name: 'tissue' },
          geometry: { type: 'Polygon', coordinates: [ring] },
        },
      ],
    }),
  );
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The bundled slide three times (two for training, one for validation), 64 px patches at 4 µm/px, no tissue filter. */
function dataset(extra: Record<string, unknown> = {}) {
  return {
    slides: [
      { slide: CMU, annotations: geojson, name: 'a', split: 'train' },
      { slide: CMU, annotations: geojson, name: 'b', split: 'train' },
      { slide: CMU, annotations: geojson, name: 'v', split: 'val' },
    ],
    classes: { tissue: 1 },
    mpp: 4,
    patchSize: 64,
    region: 'all',
    evalPatchesPerSlide: 4,
    ...extra,
  };
}

test('the grid sampler covers every cell exactly once per epoch, in a new order each epoch', async () => {
  const ds = slideDatasetFrom(dataset(), 'test data set', work);
  const train = ds.slides.filter((s) => s.split === 'train');
  const online = await openOnlinePatches(ds, train, { sampler: 'grid', seed: 5, count: 3, accumulate: 2 });
  try {
    const cells = online.cells!;
    // 2220×2967 px at 0.499 µm/px, 64 px at 4 µm/px = 513 level-0 px: 4 × 5 cells per slide, two slides.
    assert.equal(cells, 2 * 4 * 5);
    const names: string[] = [];
    const steps = Math.ceil((2 * cells + 5) / 6);
    for (let step = 0; step < steps; step++)
      for (let k = 0; k < 2; k++) for (const p of await online.batch(step, k)) names.push(p.name);
    const epochs = [names.slice(0, cells), names.slice(cells, 2 * cells)];
    for (const [e, epoch] of epochs.entries()) {
      assert.equal(new Set(epoch).size, cells, `epoch ${e} repeats a cell`);
      assert.ok(
        epoch.every((n) => /^[ab]@\d+,\d+@4$/.test(n)),
        epoch[0],
      );
    }
    assert.deepEqual([...epochs[0]!].sort(), [...epochs[1]!].sort(), 'both epochs walk the same grid');
    assert.notDeepEqual(epochs[0], epochs[1], 'each epoch is reshuffled');
    // The state after step s says where in which epoch the run is.
    const s = online.state(9);
    assert.deepEqual(s, { sampler: 'grid', patches: 54, cells, epoch: 1, position: 54 - cells });
    // A fresh reader gives the same patches for any step (nothing depends on the steps before it).
    const again = await openOnlinePatches(ds, train, { sampler: 'grid', seed: 5, count: 3, accumulate: 2 });
    const late = (await again.batch(8, 1)).map((p) => p.name);
    await again.close();
    assert.deepEqual(late, names.slice((8 * 2 + 1) * 3, (8 * 2 + 2) * 3));
  } finally {
    await online.close();
  }
});

test('random and multi-magnification patches are seeded per step; unknown samplers are refused', async () => {
  const ds = slideDatasetFrom(dataset({ mpp: [2, 4] }), 'test data set', work);
  const train = ds.slides.filter((s) => s.split === 'train');
  const a = await openOnlinePatches(ds, train, { seed: 1, count: 4, accumulate: 1 });
  const b = await openOnlinePatches(ds, train, { seed: 1, count: 4, accumulate: 1 });
  try {
    assert.equal(a.sampler, 'multi-magnification');
    const first = await a.batch(3, 0);
    const second = await b.batch(3, 0);
    assert.deepEqual(
      first.map((p) => p.name),
      second.map((p) => p.name),
    );
    assert.ok(first.every((p, i) => Buffer.from(p.image).equals(Buffer.from(second[i]!.image))));
    assert.notDeepEqual(
      first.map((p) => p.name),
      (await a.batch(4, 0)).map((p) => p.name),
    );
    const mpps = new Set<string>();
    for (let s = 0; s < 6; s++) for (const p of await a.batch(s, 0)) mpps.add(p.name.split('@')[2]!);
    assert.deepEqual([...mpps].sort(), ['2', '4']);
    // The polygon is rasterised into the masks: some patches have both classes.
    assert.ok(first.some((p) => p.mask.includes(1)) || (await a.batch(5, 0)).some((p) => p.mask.includes(1)));
  } finally {
    await a.close();
    await b.close();
  }
  await assert.rejects(
    openOnlinePatches(ds, train, { sampler: 'spiral', seed: 1, count: 1, accumulate: 1 }),
    /unknown sampler 'spiral' \(valid: random, foreground-random, grid, multi-magnification\)/,
  );
});

function slideConfig(out: string, extra: Record<string, unknown> = {}) {
  const cfg = tinyConfig('/unused', out, { steps: 4, batchSize: 2, workers: 2 });
  cfg.data = { valFraction: 0, ignoreIndex: 255, slides: dataset(), sampler: 'random', ...extra };
  cfg.augment = { ...cfg.augment, crop: 48 };
  return cfg;
}

test('online training from slides: resumed = uninterrupted (bit for bit), data wait logged, sampler state saved', async () => {
  const straight = join(work, 'straight');
  const split = join(work, 'split');
  await train(slideConfig(straight), { quiet: true });
  await train(slideConfig(split), { quiet: true, stopAtStep: 2 });
  const state = JSON.parse(
    await readFile(join(split, 'checkpoints', 'step-0000002', 'trainer_state.json'), 'utf8'),
  );
  assert.deepEqual(state.sampler, { sampler: 'random', patches: 4 });
  await train(slideConfig(split), { quiet: true, resume: true });
  const a = await readFile(join(straight, 'model', 'model.safetensors'));
  const b = await readFile(join(split, 'model', 'model.safetensors'));
  assert.ok(a.equals(b), 'resumed weights differ from the uninterrupted run');
  const log = (await readFile(join(straight, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => r.type === 'train');
  assert.equal(log.length, 4);
  for (const r of log) {
    assert.ok(r.dataWaitMs >= 0 && Number.isFinite(r.dataWaitMs), JSON.stringify(r));
    assert.ok(r.dataWaitFraction >= 0 && r.dataWaitFraction <= 1, JSON.stringify(r));
  }
  // Resuming with another sampler would not be exact: refused.
  await assert.rejects(
    train(slideConfig(split, { sampler: 'grid' }), { quiet: true, resume: true }),
    /trained with the random sampler, the config now gives the grid sampler/,
  );
});

test('data.fraction keeps a seeded subset of the training slides; data.patches: once trains on a one-off sample', async () => {
  const out = join(work, 'fraction');
  await train(slideConfig(out, { fraction: 0.5, patches: 'once' }), { quiet: true, stopAtStep: 1 });
  const split = JSON.parse(await readFile(join(out, 'split.json'), 'utf8'));
  assert.equal(split.train.length, 1);
  assert.equal(split.left.length, 1);
  assert.deepEqual([...split.train, ...split.left].sort(), ['a', 'b']);
  assert.deepEqual(split.val, ['v']);
  assert.equal(split.fraction, 0.5);
  const state = JSON.parse(
    await readFile(join(out, 'checkpoints', 'step-0000001', 'trainer_state.json'), 'utf8'),
  );
  assert.equal(state.sampler, undefined, 'no online sampler with patches: once');
});

test('images with label masks as slides (slideMpp, mask): patches at the native mpp are the image and mask crops', {
  skip: needs(['monuseg']),
}, async () => {
  const name = 'TCGA-18-5592-01Z-00-DX1';
  const ds = slideDatasetFrom(
    {
      slides: [
        {
          slide: fixture('monuseg', 'images', `${name}.tif`),
          mask: fixture('monuseg', 'masks', `${name}.png`),
        },
      ],
      slideMpp: 0.25,
      mpp: 0.25,
      patchSize: 64,
      region: 'all',
    },
    'test data set',
    work,
  );
  const [image, mask] = await Promise.all([
    sharp(fixture('monuseg', 'images', `${name}.tif`))
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true }),
    sharp(fixture('monuseg', 'masks', `${name}.png`))
      .extractChannel(0)
      .raw()
      .toBuffer({ resolveWithObject: true }),
  ]);
  const online = await openOnlinePatches(ds, ds.slides, {
    sampler: 'grid',
    seed: 0,
    count: 4,
    accumulate: 1,
  });
  try {
    assert.equal(online.cells, 15 * 15);
    for (const p of await online.batch(0, 0)) {
      const [, xy] = p.name.split('@');
      const [x, y] = xy!.split(',').map(Number) as [number, number];
      for (let j = 0; j < 64; j += 7) {
        for (let i = 0; i < 64; i += 5) {
          const src = (y + j) * 1000 + x + i;
          assert.equal(p.mask[j * 64 + i], mask.data[src], `mask at ${x + i},${y + j}`);
          assert.equal(p.image[(j * 64 + i) * 3], image.data[src * 3], `red at ${x + i},${y + j}`);
        }
      }
    }
  } finally {
    await online.close();
  }
  // At 1 µm/px the 1000 px image is 250 px: 64 px patches, a 3 × 3 grid, nuclei still in the masks.
  const coarse = { ...ds, mpp: 1 };
  const patches = [];
  for await (const p of labelledPatches(coarse, coarse.slides, 'eval')) patches.push(p);
  assert.equal(patches.length, 9);
  assert.ok(patches.some((p) => p.mask.includes(1)) && patches.every((p) => p.mpp === 1));
  assert.throws(
    () =>
      slideDatasetFrom({ slides: [{ slide: 'a.tif', mask: 'a.png', annotations: 'a.xml' }] }, 'x.yaml', work),
    /x.yaml: slides\[0\]: give 'annotations' or 'mask', not both/,
  );
});

test('data.fraction: a seeded subset of round(n × fraction) names, the same for the same seed', () => {
  const names = Array.from({ length: 24 }, (_, i) => `img-${String(i).padStart(2, '0')}`);
  const a = fractionOf(names, 0.3, 0, (n) => n);
  assert.equal(a.length, 7);
  assert.deepEqual(a, [...a].sort());
  assert.ok(a.every((n) => names.includes(n)));
  assert.deepEqual(
    fractionOf([...names].reverse(), 0.3, 0, (n) => n),
    a,
    'independent of the input order',
  );
  assert.notDeepEqual(
    fractionOf(names, 0.3, 1, (n) => n),
    a,
    'another seed, another subset',
  );
  assert.equal(
    fractionOf(names, 1, 0, (n) => n),
    names,
  );
  assert.equal(fractionOf(names, 0.01, 0, (n) => n).length, 1, 'at least one');
});

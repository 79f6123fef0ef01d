/**
 * Patch labels for contrastive pretraining: the mask's majority class on constructed masks, labels drawn from an
 * image+mask folder checked against the image they were cut from, slide patches labelled from annotations
 * checked against the MoNuSeg mask, CSV labels, and bad configs.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { createRng } from '../src/patching/random.ts';
import { loadPretrainConfig } from '../src/train/pretrain-config.ts';
import { cutWindow, majorityLabel, openPatchSource, parseLabelCsv } from '../src/train/pretrain-data.ts';
import { fixture, needs } from './fixtures.ts';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'slideseg-pretrain-data-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test('majorityLabel: most frequent non-ignored class, ties to the smaller, -1 when all ignored', () => {
  const mask = new Uint8Array(64 * 64);
  mask.fill(1, 0, 1500); // 1500 × class 1
  mask.fill(2, 1500, 3300); // 1800 × class 2
  mask.fill(255, 3300, 4096); // 796 ignored; class 0 absent
  assert.equal(majorityLabel(mask, 255), 2);
  // Ignored pixels never win even when most numerous.
  mask.fill(255, 0, 3000);
  assert.equal(majorityLabel(mask, 255), 2);
  assert.equal(majorityLabel(new Uint8Array([3, 3, 1, 1, 7]), 7), 1);
  assert.equal(majorityLabel(new Uint8Array([255, 255]), 255), -1);
  // Foreground share: 20 % nuclei → 1 at a 0.15 threshold, 0 at 0.25.
  const nuclei = new Uint8Array(100);
  nuclei.fill(1, 0, 20);
  assert.equal(majorityLabel(nuclei, 255), 0);
  assert.equal(majorityLabel(nuclei, 255, 0.15), 1);
  assert.equal(majorityLabel(nuclei, 255, 0.25), 0);
});

test('folder patches carry the majority class of their window (checked against the image itself)', async () => {
  // A 160×120 image whose red channel encodes the class (0 → 40, 1 → 120, 2 → 200; ignored → 0), in blocks of
  // irregular sizes, so any 64 px window mixes classes.
  const W = 160;
  const H = 120;
  const image = new Uint8Array(W * H * 3);
  const mask = new Uint8Array(W * H);
  const red = [40, 120, 200];
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const c = (Math.floor(x / 23) + Math.floor(y / 37)) % 3;
      const ignored = x % 41 < 5 && y % 29 < 9;
      mask[y * W + x] = ignored ? 255 : c;
      image[(y * W + x) * 3] = ignored ? 0 : red[c]!;
      image[(y * W + x) * 3 + 1] = 90;
      image[(y * W + x) * 3 + 2] = 150;
    }
  }
  const dir = join(tmp, 'folder');
  await mkdir(join(dir, 'images'), { recursive: true });
  await mkdir(join(dir, 'masks'), { recursive: true });
  await sharp(image, { raw: { width: W, height: H, channels: 3 } })
    .png()
    .toFile(join(dir, 'images', 'a.png'));
  await sharp(mask, { raw: { width: W, height: H, channels: 1 } })
    .png()
    .toFile(join(dir, 'masks', 'a.png'));
  const cfg = await loadPretrainConfig(undefined, [], { data: { dir, numLabels: 3 }, patch: 64 });
  const source = await openPatchSource(cfg);
  const patches = await source.draw(24, createRng(5), 0);
  const seen = new Set<number>();
  for (const p of patches) {
    const counts = [0, 0, 0];
    for (let i = 0; i < 64 * 64; i++) {
      const r = p.image[i * 3]!;
      if (r !== 0) counts[red.indexOf(r)]!++;
    }
    const expected = counts.indexOf(Math.max(...counts));
    assert.equal(p.label, expected, `patch at (${p.source.x}, ${p.source.y}): counts ${counts}`);
    seen.add(p.label);
  }
  assert.ok(seen.size >= 2, 'the windows should not all share one class');
  await source.close();
  // labels: none → SimCLR patches carry no label.
  const simclr = await openPatchSource({ ...cfg, labels: 'none' });
  assert.ok((await simclr.draw(3, createRng(5), 0)).every((p) => p.label === -1));
});

test('slide patches are labelled from the annotations as the rasterised mask would label them', {
  skip: needs(['monuseg']),
}, async () => {
  const name = 'TCGA-B0-5698-01Z-00-DX1';
  const cfg = await loadPretrainConfig(undefined, [], {
    data: {
      slides: [fixture('monuseg', 'images', `${name}.tif`)],
      annotations: [fixture('monuseg', 'annotations', `${name}.xml`)],
      sampler: 'random',
      level: 0,
      foregroundFraction: 0.15,
    },
    patch: 64,
  });
  const source = await openPatchSource(cfg);
  const patches = await source.draw(12, createRng(1), 7);
  await source.close();
  const { data, info } = await sharp(fixture('monuseg', 'masks', `${name}.png`))
    .extractChannel(0)
    .raw()
    .toBuffer({ resolveWithObject: true });
  const labels = new Set<number>();
  for (const p of patches) {
    const window = cutWindow(new Uint8Array(data), info.width, 1, p.source.x, p.source.y, 64);
    assert.equal(p.label, majorityLabel(window, 255, 0.15), `patch at (${p.source.x}, ${p.source.y})`);
    labels.add(p.label);
  }
  assert.deepEqual([...labels].sort(), [0, 1]);
});

test('CSV patches: named labels become sorted indices, small images are enlarged to the patch', async () => {
  const dir = join(tmp, 'csv');
  await mkdir(dir, { recursive: true });
  const colours: [string, string, number][] = [
    ['a.png', 'tumour', 200],
    ['b.png', 'stroma', 100],
    ['c.png', 'tumour', 30],
  ];
  for (const [file, , r] of colours) {
    await sharp({ create: { width: 40, height: 48, channels: 3, background: { r, g: 0, b: 0 } } })
      .png()
      .toFile(join(dir, file));
  }
  const csv = join(dir, 'labels.csv');
  await writeFile(csv, `path,label\n${colours.map(([f, l]) => `${f},${l}`).join('\n')}\n`);
  const cfg = await loadPretrainConfig(undefined, [], { data: { csv }, patch: 64 });
  const source = await openPatchSource(cfg);
  assert.deepEqual(source.classes, ['stroma', 'tumour']);
  const patches = await source.draw(10, createRng(2), 0);
  for (const p of patches) {
    assert.equal(p.image.length, 64 * 64 * 3);
    const expected = p.image[0] === 100 ? 0 : 1;
    assert.equal(p.label, expected);
  }
  assert.throws(() => parseLabelCsv('a.png,1\nb.png\n', 'x.csv'), /x\.csv:2: expected 'image path,label'/);
});

test('bad configs fail with a message naming the problem', { skip: needs(['monuseg']) }, async () => {
  await assert.rejects(
    loadPretrainConfig(undefined, [], { data: { dir: 'x', csv: 'y.csv' } }),
    /more than one source/,
  );
  await assert.rejects(loadPretrainConfig(undefined, []), /data needs one source/);
  await assert.rejects(
    loadPretrainConfig(undefined, [], { data: { dir: 'x' }, patch: 16 }),
    /patch must be at least 32/,
  );
  const cfg = await loadPretrainConfig(undefined, [], {
    data: { dir: fixture('monuseg'), names: ['no-such-image'] },
  });
  await assert.rejects(openPatchSource(cfg), /no image\+mask pair named no-such-image/);
});

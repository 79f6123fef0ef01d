/**
 * The OME-Zarr label writer: a label map of the CMU-1 derived image written tile by tile in shuffled order,
 * read back with our OME-Zarr reader and with zarrita; NGFF multiscales and image-label metadata; 2×2-mode
 * pyramid; resume keeping chunks from an interrupted run; blosc; bad input.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as zarr from 'zarrita';
import { createLabelWriter } from '../src/infer/omezarr-writer.ts';
import { FolderStore, openOmeZarr } from '../src/slide/zarr/index.ts';
import { fixture, needs } from './fixtures.ts';

const TMP = await mkdtemp(join(tmpdir(), 'omezarr-writer-'));
after(() => rm(TMP, { recursive: true, force: true }));

/** A real label map: CMU-1 derived level 2 (320×384) classed by darkness: 0 background, 1 tissue, 2 dark. */
let LABELS: Uint8Array;
const W = 320;
const H = 384;

before(async () => {
  if (needs(['derived', 'cmu-1.ome.zarr'])) return;
  const slide = await openOmeZarr(fixture('derived', 'cmu-1.ome.zarr'));
  const img = await slide.readLevel(2, 0, 0, W, H);
  LABELS = new Uint8Array(W * H);
  for (let p = 0; p < W * H; p++) {
    const grey = (img.data[p * 4] + img.data[p * 4 + 1] + img.data[p * 4 + 2]) / 3;
    LABELS[p] = grey > 215 ? 0 : grey > 150 ? 1 : 2;
  }
  await slide.close();
  const counts = [0, 0, 0];
  for (const v of LABELS) counts[v]++;
  assert.ok(
    counts.every((c) => c > 1000),
    `all three classes present: ${counts}`,
  );
});

/** A fresh image folder holding the parent's NGFF metadata (scale 0.499 µm) and an existing label listing. */
async function imageFolder(name: string): Promise<string> {
  const dir = join(TMP, name);
  await mkdir(join(dir, 'labels'), { recursive: true });
  await copyFile(fixture('derived', 'cmu-1.ome.zarr', '.zattrs'), join(dir, '.zattrs'));
  await copyFile(fixture('derived', 'cmu-1.ome.zarr', '.zgroup'), join(dir, '.zgroup'));
  await writeFile(join(dir, 'labels', '.zattrs'), JSON.stringify({ labels: ['nuclei'] }));
  return dir;
}

function crop(map: Uint8Array, width: number, x: number, y: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h);
  for (let r = 0; r < h; r++) out.set(map.subarray((y + r) * width + x, (y + r) * width + x + w), r * w);
  return out;
}

/** Tiles of 50×70 (not chunk-aligned), in a fixed shuffled order. */
function tiles(): [number, number, number, number][] {
  const list: [number, number, number, number][] = [];
  for (let y = 0; y < H; y += 70)
    for (let x = 0; x < W; x += 50) list.push([x, y, Math.min(50, W - x), Math.min(70, H - y)]);
  let seed = 12345;
  for (let i = list.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

/** Reference 2×2 mode (ties to the earliest of top-left, top-right, bottom-left, bottom-right), ceil size. */
function modeDown(map: Uint8Array, w: number, h: number): { map: Uint8Array; w: number; h: number } {
  const ow = Math.ceil(w / 2);
  const oh = Math.ceil(h / 2);
  const out = new Uint8Array(ow * oh);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const vals: number[] = [];
      for (const [dx, dy] of [
        [0, 0],
        [1, 0],
        [0, 1],
        [1, 1],
      ]) {
        if (2 * x + dx < w && 2 * y + dy < h) vals.push(map[(2 * y + dy) * w + 2 * x + dx]);
      }
      const counts = new Map<number, number>();
      for (const v of vals) counts.set(v, (counts.get(v) ?? 0) + 1);
      let best = vals[0];
      for (const v of vals) if ((counts.get(v) as number) > (counts.get(best) as number)) best = v;
      out[y * ow + x] = best;
    }
  }
  return { map: out, w: ow, h: oh };
}

async function zarritaLevel(labelsPath: string, level: number) {
  const arr = await zarr.open.v2(zarr.root(new FolderStore(labelsPath)).resolve(String(level)), {
    kind: 'array',
  });
  return zarr.get(arr);
}

async function tmpFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((e) => e.includes('.tmp-'));
}

test('label map written tile by tile reads back exactly (our reader and zarrita), with NGFF label metadata and a mode pyramid', {
  skip: needs(['derived', 'cmu-1.ome.zarr']),
}, async () => {
  const image = await imageFolder('full');
  const writer = await createLabelWriter({
    imagePath: image,
    name: 'tissue',
    width: W,
    height: H,
    chunkSize: 64,
    downsample: 4,
    classNames: ['background', 'tissue', 'dark'],
    colors: { 2: [10, 20, 30, 255] },
  });
  for (const [x, y, w, h] of tiles()) await writer.writeTile(x, y, w, h, crop(LABELS, W, x, y, w, h));
  const summary = await writer.finish();
  assert.equal(summary.chunksWritten, 5 * 6);
  assert.equal(summary.chunksIncomplete, 0);
  assert.equal(summary.chunksMissing, 0);
  assert.deepEqual(
    summary.levels.map((l) => [l.width, l.height]),
    [
      [320, 384],
      [160, 192],
      [80, 96],
      [40, 48],
    ],
  );
  assert.deepEqual(await tmpFiles(image), []);

  const path = join(image, 'labels', 'tissue');
  // zarrita: level 0 is the label map.
  const z0 = await zarritaLevel(path, 0);
  assert.deepEqual(z0.shape, [H, W]);
  assert.deepEqual(new Uint8Array(z0.data as Uint8Array), LABELS);
  // Our reader: levels, downsample from the scales, grey values = labels; lower levels = reference 2×2 mode.
  const reader = await openOmeZarr(path);
  assert.deepEqual(
    reader.levels.map((l) => [l.width, l.height, l.downsample, l.tileWidth]),
    [
      [320, 384, 1, 64],
      [160, 192, 2, 64],
      [80, 96, 4, 64],
      [40, 48, 8, 64],
    ],
  );
  assert.ok(reader.mpp && Math.abs(reader.mpp.x - 0.499 * 4) < 1e-12);
  let ref = { map: LABELS, w: W, h: H };
  for (let level = 0; level < 4; level++) {
    if (level > 0) ref = modeDown(ref.map, ref.w, ref.h);
    const img = await reader.readLevel(level, 0, 0, ref.w, ref.h);
    const got = new Uint8Array(ref.w * ref.h);
    for (let p = 0; p < got.length; p++) got[p] = img.data[p * 4];
    assert.deepEqual(got, ref.map, `level ${level}`);
    const zl = await zarritaLevel(path, level);
    assert.deepEqual(new Uint8Array(zl.data as Uint8Array), ref.map, `zarrita level ${level}`);
  }

  const attrs = JSON.parse(await readFile(join(path, '.zattrs'), 'utf8'));
  const ms = attrs.multiscales[0];
  assert.equal(ms.version, '0.4');
  assert.deepEqual(ms.axes, [
    { name: 'y', type: 'space', unit: 'micrometer' },
    { name: 'x', type: 'space', unit: 'micrometer' },
  ]);
  ms.datasets.forEach(
    (d: { path: string; coordinateTransformations: { type: string; scale: number[] }[] }, i: number) => {
      assert.equal(d.path, String(i));
      assert.equal(d.coordinateTransformations[0].type, 'scale');
      for (const s of d.coordinateTransformations[0].scale)
        assert.ok(Math.abs(s - 0.499 * 4 * 2 ** i) < 1e-12);
    },
  );
  const label = attrs['image-label'];
  assert.equal(label.version, '0.4');
  assert.deepEqual(label.source, { image: '../../' });
  assert.deepEqual(label.colors[0], { 'label-value': 0, rgba: [0, 0, 0, 0] });
  assert.equal(label.colors[1]['label-value'], 1);
  assert.equal(label.colors[1].rgba[3], 255);
  assert.deepEqual(label.colors[2], { 'label-value': 2, rgba: [10, 20, 30, 255] });
  assert.deepEqual(label.properties, [
    { 'label-value': 0, class: 'background' },
    { 'label-value': 1, class: 'tissue' },
    { 'label-value': 2, class: 'dark' },
  ]);
  const listing = JSON.parse(await readFile(join(image, 'labels', '.zattrs'), 'utf8'));
  assert.deepEqual(listing.labels, ['nuclei', 'tissue']);
  const zarray = JSON.parse(await readFile(join(path, '0', '.zarray'), 'utf8'));
  assert.deepEqual(zarray.compressor, { id: 'zlib', level: 1 });
  assert.equal(zarray.dtype, '|u1');
  // The parent image itself still opens, untouched.
  assert.equal(
    JSON.parse(await readFile(join(image, '.zattrs'), 'utf8')).multiscales[0].name,
    'CMU-1-Small-Region',
  );
});

test('resume keeps chunks of an interrupted run and ignores new pixels for them; overlapping tiles rewrite', {
  skip: needs(['derived', 'cmu-1.ome.zarr']),
}, async () => {
  const image = await imageFolder('resume');
  const opts = { imagePath: image, name: 'tissue', width: W, height: H, chunkSize: 64, downsample: 4 };
  const first = await createLabelWriter(opts);
  // The top 140 rows, then "crash" (no finish): chunk rows 0 and 1 (y < 128) are complete.
  for (const [x, y, w, h] of tiles().filter(([, y]) => y < 140)) {
    await first.writeTile(x, y, w, h, crop(LABELS, W, x, y, w, h));
  }
  const level0 = join(image, 'labels', 'tissue', '0');
  assert.deepEqual((await readdir(level0)).filter((e) => e !== '.zarray').sort(), ['0', '1']);

  const resumed = await createLabelWriter({ ...opts, resume: true });
  assert.equal(resumed.isTileDone(0, 0, W, 128), true);
  assert.equal(resumed.isTileDone(0, 100, 10, 40), false);
  // Pixels sent for kept chunks are ignored: write 9s everywhere first, then the real map for the rest.
  await resumed.writeTile(0, 0, W, 128, new Uint8Array(W * 128).fill(9));
  for (const [x, y, w, h] of tiles()) {
    if (!resumed.isTileDone(x, y, w, h)) await resumed.writeTile(x, y, w, h, crop(LABELS, W, x, y, w, h));
  }
  // An overlapping tile into an already written chunk updates it (last write wins).
  await resumed.writeTile(200, 300, 3, 2, new Uint8Array(6).fill(7));
  const summary = await resumed.finish();
  assert.equal(summary.chunksResumed, 10);
  assert.equal(summary.chunksWritten, 20);
  const expected = LABELS.slice();
  for (let y = 300; y < 302; y++) for (let x = 200; x < 203; x++) expected[y * W + x] = 7;
  const z0 = await zarritaLevel(join(image, 'labels', 'tissue'), 0);
  assert.deepEqual(new Uint8Array(z0.data as Uint8Array), expected);
  assert.deepEqual(await tmpFiles(image), []);

  await assert.rejects(
    createLabelWriter({ ...opts, width: W + 1, resume: true }),
    /cannot resume: existing shape \[384,320\]/,
  );
});

test('blosc-zstd chunks decode with zarrita; unfinished chunks are flushed at finish and counted', {
  skip: needs(['derived', 'cmu-1.ome.zarr']),
}, async () => {
  const image = await imageFolder('blosc');
  const writer = await createLabelWriter({
    imagePath: image,
    name: 'b',
    width: 100,
    height: 70,
    chunkSize: 32,
    compression: 'blosc-zstd',
  });
  await writer.writeTile(0, 0, 100, 60, crop(LABELS, W, 0, 0, 100, 60));
  const summary = await writer.finish();
  // Rows 0..59 cover chunk rows 0 (complete) and 1 (partly: rows 32..59 of 32..63); chunk row 2 untouched.
  assert.equal(summary.chunksWritten, 8);
  assert.equal(summary.chunksIncomplete, 4);
  assert.equal(summary.chunksMissing, 4);
  const path = join(image, 'labels', 'b');
  const zarray = JSON.parse(await readFile(join(path, '0', '.zarray'), 'utf8'));
  assert.equal(zarray.compressor.id, 'blosc');
  assert.equal(zarray.compressor.cname, 'zstd');
  const z0 = await zarritaLevel(path, 0);
  const expected = new Uint8Array(100 * 70);
  expected.set(crop(LABELS, W, 0, 0, 100, 60));
  assert.deepEqual(new Uint8Array(z0.data as Uint8Array), expected);
  const listing = JSON.parse(await readFile(join(image, 'labels', '.zattrs'), 'utf8'));
  assert.deepEqual(listing.labels, ['nuclei', 'b']);
});

test('label writer bad input: errors name the problem', {
  skip: needs(['derived', 'cmu-1.ome.zarr']),
}, async () => {
  const image = await imageFolder('bad');
  await assert.rejects(
    createLabelWriter({ imagePath: image, name: '../x', width: 10, height: 10 }),
    /invalid label name/,
  );
  await assert.rejects(
    createLabelWriter({ imagePath: image, name: 'x', width: 0, height: 10 }),
    /width must be a positive integer/,
  );
  await assert.rejects(
    createLabelWriter({ imagePath: image, name: 'x', width: 10, height: 10, compression: 'lzma' as never }),
    /unknown compression "lzma"/,
  );
  const w = await createLabelWriter({ imagePath: image, name: 'x', width: 10, height: 10 });
  await assert.rejects(
    w.writeTile(5, 5, 6, 1, new Uint8Array(6)),
    /tile \(5, 5, 6×1\) is outside the 10×10 label map/,
  );
  await assert.rejects(w.writeTile(0, 0, 2, 2, new Uint8Array(3)), /tile has 3 values, expected 2×2/);
  await w.finish();
  await assert.rejects(w.writeTile(0, 0, 1, 1, new Uint8Array(1)), /writeTile after finish/);
});

/**
 * Whole-slide inference end to end with the tiny SegFormer fixture: no seams on a constant slide, stitched labels
 * equal to the in-memory sliding window on the same region, valid outputs, and resume after an interruption.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import * as zarr from 'zarrita';
import { parseGeoJSON } from '../src/annotations/index.ts';
import { ready, tf } from '../src/engine/index.ts';
import {
  argmaxLabels,
  InferAbortedError,
  type InferSummary,
  inferSlide,
  slidingWindowProbabilities,
  tileOrigins,
  writeImagePyramid,
} from '../src/infer/index.ts';
import { tilesAreSlidePixels } from '../src/infer/tile-source.ts';
import { OnnxSegmenter } from '../src/onnx/index.ts';
import { openSlide } from '../src/slide/index.ts';
import { FolderStore } from '../src/slide/zarr/store.ts';
import { fixture } from './fixtures.ts';

const MODEL = fixture('segformer', 'segformer-tiny');
/** Two classes, and it predicts both on the CMU tissue (the 3-class fixture says class 0 nearly everywhere). */
const MODEL_ODD = fixture('segformer', 'segformer-tiny-odd');
const CMU = fixture('slides', 'cmu-1-small-region.svs');
let dir: string;
/** A 640×640 tissue crop of CMU-1 as a tiled TIFF (same mpp), small enough to tile at full resolution. */
let crop: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'infer-slide-'));
  await ready('cpu');
  const slide = await openSlide(CMU);
  const pxPerCm = 10000 / slide.mpp!.x;
  const r = await slide.readRegion({ x: 700, y: 900, level: 0, width: 640, height: 640 });
  await slide.close();
  crop = join(dir, 'crop.tif');
  await sharp(r.data, { raw: { width: 640, height: 640, channels: 4 } })
    .removeAlpha()
    .tiff({
      tile: true,
      tileWidth: 128,
      tileHeight: 128,
      xres: pxPerCm / 10,
      yres: pxPerCm / 10,
      resolutionUnit: 'cm',
    })
    .toFile(crop);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Level-0 labels of an inference run, as a row-major Uint8Array. */
async function readLabels(summary: InferSummary): Promise<Uint8Array> {
  const arr = await zarr.open(new FolderStore(join(summary.outputs.labels, '0')), { kind: 'array' });
  const { data } = (await zarr.get(arr)) as { data: Uint8Array };
  assert.equal(data.length, summary.grid.width * summary.grid.height);
  return data;
}

test('a constant slide gives one constant prediction (no seams)', async () => {
  const path = join(dir, 'flat.tif');
  // 700×500 at 0.5 µm/px (2000 px/mm), tiled pyramidal TIFF as scanners write it.
  await sharp({ create: { width: 700, height: 500, channels: 3, background: { r: 200, g: 120, b: 170 } } })
    .tiff({
      tile: true,
      tileWidth: 128,
      tileHeight: 128,
      pyramid: true,
      compression: 'deflate',
      xres: 2000,
      yres: 2000,
      resolutionUnit: 'cm',
    })
    .toFile(path);
  const summary = await inferSlide(path, {
    model: MODEL,
    out: join(dir, 'flat-out'),
    mpp: 0.5,
    slideMpp: 0.5,
    tile: 128,
    overlap: 48,
    batch: 3,
    tissue: 'all',
    chunkSize: 192,
    log: null,
  });
  const labels = await readLabels(summary);
  const first = labels[0]!;
  assert.ok(first > 0, 'every pixel is covered by a tile');
  assert.equal(labels.filter((v) => v !== first).length, 0, 'one label everywhere');
  assert.ok(summary.tiles.computed > 12);
});

for (const tta of ['none', 'd4'] as const) {
  test(`stitched labels equal the sliding window run directly on the same region (tta ${tta})`, () =>
    stitchedEqualsDirect(tta));
}

/** Whole-slide inference against the in-memory sliding window on a region, away from the region's border. */
async function stitchedEqualsDirect(tta: 'none' | 'd4'): Promise<void> {
  const tile = 128;
  const overlap = 32;
  const stride = tile - overlap;
  const slide = await openSlide(crop);
  const mpp = slide.mpp!.x;
  const summary = await inferSlide(crop, {
    model: MODEL_ODD,
    out: join(dir, `cmu-exact-${tta}`),
    mpp, // native resolution: tiles are level-0 reads, as in the direct run
    tile,
    overlap,
    tta,
    batch: 2,
    tissue: 'all',
    chunkSize: 256,
    log: null,
  });
  const W = summary.grid.width;
  assert.equal(W, slide.levels[0]!.width);
  const labels = await readLabels(summary);
  // A region made of whole grid tiles: the direct run tiles it exactly as the slide run did.
  const ox = tileOrigins(W, tile, stride)[1]!;
  const oy = tileOrigins(summary.grid.height, tile, stride)[2]!;
  const size = tile + 2 * stride;
  const region = await slide.readRegion({ x: ox, y: oy, level: 0, width: size, height: size });
  await slide.close();
  const rgb = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = region.data[i * 4 + c]!;
  const onnx = await OnnxSegmenter.load(
    join(dir, `cmu-exact-${tta}`, '.cache', (await readdir(join(dir, `cmu-exact-${tta}`, '.cache')))[0]!),
  );
  const model = {
    numLabels: 2,
    async logits(x: tf.Tensor4D) {
      const nchw = tf.transpose(x, [0, 3, 1, 2]);
      const out = await onnx.run((await nchw.data()) as Float32Array, nchw.shape);
      nchw.dispose();
      return tf.transpose(tf.tensor4d(out.data, out.dims), [0, 2, 3, 1]) as tf.Tensor4D;
    },
  };
  // The direct run's views are tensor flips/transposes; the slide run's are index maps on plain arrays.
  const probs = await slidingWindowProbabilities(model, rgb, size, size, { tile, overlap, batch: 1, tta });
  await onnx.release();
  const direct = argmaxLabels(probs, 2);
  let compared = 0;
  let equal = 0;
  const classes = new Set<number>();
  for (let y = overlap; y < size - overlap; y++) {
    for (let x = overlap; x < size - overlap; x++) {
      compared++;
      const stitched = labels[(oy + y) * W + ox + x]! - 1;
      classes.add(stitched);
      if (stitched === direct[y * size + x]) equal++;
    }
  }
  assert.ok(classes.size >= 2, `the region is not trivial (classes ${[...classes]})`);
  assert.equal(equal, compared, `${compared - equal} of ${compared} interior pixels differ`);
  assert.equal(summary.tta, tta);
}

test('outputs: OME-Zarr labels, QuPath GeoJSON inside the slide, areas = pixels × mpp²', async () => {
  const out = join(dir, 'cmu-out');
  const summary = await inferSlide(CMU, {
    model: MODEL,
    out,
    mpp: 2,
    tile: 128,
    overlap: 32,
    batch: 4,
    chunkSize: 128,
    log: null,
  });
  const slide = await openSlide(CMU);
  const [W0, H0] = [slide.levels[0]!.width, slide.levels[0]!.height];
  await slide.close();
  // NGFF label metadata with image-label colours and a pyramid.
  const labelsAttrs = JSON.parse(
    await readFile(join(out, 'cmu-1-small-region.ome.zarr', 'labels', '.zattrs'), 'utf8'),
  );
  assert.deepEqual(labelsAttrs.labels, ['segmentation']);
  const attrs = JSON.parse(await readFile(join(summary.outputs.labels, '.zattrs'), 'utf8'));
  assert.ok(attrs['image-label'].colors.length >= 3);
  assert.ok(attrs.multiscales[0].datasets.length >= 2);
  const labels = await readLabels(summary);
  const counts = [0, 0, 0, 0];
  for (const v of labels) counts[v]!++;
  assert.equal(summary.unlabelledPixels, counts[0]);
  assert.ok(counts[0]! > 0 && counts[0]! < labels.length, 'tissue detection left some background out');
  summary.classes.forEach((name, c) => {
    assert.equal(summary.areas[name]!.pixels, counts[c + 1]);
    assert.equal(summary.areas[name]!.um2, counts[c + 1]! * 2 * 2);
  });
  assert.equal(summary.tiles.computed, summary.tiles.tissue);
  assert.ok(summary.tiles.tissue < summary.tiles.grid);
  // GeoJSON: Polygon features whose vertices lie in the slide, read back by the annotations parser.
  const text = await readFile(summary.outputs.geojson, 'utf8');
  const doc = JSON.parse(text);
  assert.equal(doc.type, 'FeatureCollection');
  assert.ok(doc.features.length > 0);
  for (const f of doc.features) {
    assert.equal(f.geometry.type, 'Polygon');
    for (const ring of f.geometry.coordinates) {
      assert.deepEqual(ring[0], ring[ring.length - 1]);
      for (const [x, y] of ring) assert.ok(x >= 0 && x <= W0 && y >= 0 && y <= H0, `vertex ${x},${y}`);
    }
  }
  const parsed = parseGeoJSON(text);
  assert.equal(parsed.polygons.length, doc.features.length);
  // The polygons' total area (level-0 px², holes subtracted) matches the class areas within the overview's error.
  const png = await sharp(summary.outputs.overlay).metadata();
  assert.equal(png.format, 'png');
  const saved = JSON.parse(await readFile(summary.outputs.summary, 'utf8'));
  assert.deepEqual(saved.areas, summary.areas);
});

test('resume after an interruption: same labels, finished chunks not recomputed', async () => {
  const opts = {
    model: MODEL,
    mpp: 1.5,
    tile: 128,
    overlap: 32,
    batch: 1,
    chunkSize: 128,
    log: null,
  } as const;
  const full = await inferSlide(CMU, { ...opts, out: join(dir, 'resume-full') });
  const out = join(dir, 'resume-cut');
  const controller = new AbortController();
  await assert.rejects(
    inferSlide(CMU, {
      ...opts,
      out,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.chunksWritten >= 4) controller.abort();
      },
    }),
    InferAbortedError,
  );
  assert.ok(!existsSync(join(out, 'cmu-1-small-region.summary.json')));
  const resumed = await inferSlide(CMU, { ...opts, out, resume: true });
  assert.ok(resumed.chunks.resumed >= 4, `resumed ${resumed.chunks.resumed} chunks`);
  assert.ok(resumed.tiles.skippedResumed > 0);
  assert.ok(
    resumed.tiles.computed < full.tiles.computed,
    `${resumed.tiles.computed} vs ${full.tiles.computed}`,
  );
  assert.deepEqual(await readLabels(resumed), await readLabels(full));
  assert.deepEqual(resumed.areas, full.areas);
});

/** Level 0 of an OME-Zarr image (c, y, x uint8) as one array. */
async function readImage(path: string): Promise<Uint8Array> {
  const arr = await zarr.open(new FolderStore(join(path, '0')), { kind: 'array' });
  return ((await zarr.get(arr)) as { data: Uint8Array }).data;
}

test('image chunks kept from the tiles equal the image read from the slide (grid on an exact 2× level)', async () => {
  // 0.25 µm/px with a level at exactly 2×: tiles at 0.5 µm/px are that level's own pixels, and the run keeps them
  // for the image instead of reading the slide again; some grid chunks at the edge are read from the slide.
  const source = await openSlide(CMU);
  const r = await source.readRegion({ x: 600, y: 800, level: 0, width: 1000, height: 720 });
  await source.close();
  const path = join(dir, 'exact-2x.tif');
  await sharp(r.data, { raw: { width: 1000, height: 720, channels: 4 } })
    .removeAlpha()
    .tiff({
      tile: true,
      tileWidth: 128,
      tileHeight: 128,
      pyramid: true,
      xres: 4000,
      yres: 4000,
      resolutionUnit: 'cm',
    })
    .toFile(path);
  const slide = await openSlide(path);
  try {
    assert.equal(slide.levels[1]?.downsample, 2);
    assert.ok(tilesAreSlidePixels(slide, 2, true), 'the run keeps the tiles for the image');
    const summary = await inferSlide(path, {
      model: MODEL_ODD,
      out: join(dir, 'exact-2x'),
      mpp: 0.5,
      tile: 128,
      overlap: 32,
      batch: 2,
      chunkSize: 96,
      log: null,
    });
    assert.deepEqual([summary.grid.width, summary.grid.height], [500, 360]);
    const reference = join(dir, 'exact-2x-reference.ome.zarr');
    await writeImagePyramid(slide, {
      path: reference,
      name: 'reference',
      width: summary.grid.width,
      height: summary.grid.height,
      downsample: 2,
      mpp: 0.5,
      chunkSize: 96,
    });
    const kept = await readImage(summary.outputs.image);
    const read = await readImage(reference);
    assert.equal(kept.length, 3 * 500 * 360);
    assert.ok(
      kept.some((v) => v !== kept[0]),
      'the image is not blank',
    );
    assert.ok(Buffer.from(kept).equals(Buffer.from(read)), 'image pixels differ from the slide read');
  } finally {
    await slide.close();
  }
});

test('tiles resampled from the slide are not kept for the image', async () => {
  const slide = await openSlide(CMU);
  try {
    // 0.499 µm/px resampled to 0.5: a tile's pixels depend on where it starts.
    assert.equal(tilesAreSlidePixels(slide, 0.5 / slide.mpp!.x, true), false);
    assert.equal(tilesAreSlidePixels(slide, 1, true), true);
  } finally {
    await slide.close();
  }
});

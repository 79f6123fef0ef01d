/** Flat images and TIFFs against libvips, worker-pool decoding, mpp reads, thumbnails and the CLI. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import sharp from 'sharp';
import { FileByteSource, openSlide } from '../src/slide/index.ts';
import { parseTiff } from '../src/slide/tiff/ifd.ts';
import { fixture, needs } from './fixtures.ts';
import { compareRgba, readPng } from './slide-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'slideseg-api-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('flat images decode like libvips', () => {
  for (const [what, parts] of [
    ['stripped uncompressed TIFF', ['slides', 'kidney-48-5.tif']],
    ['LZW TIFF', ['monuseg', 'images', 'TCGA-B0-5698-01Z-00-DX1.tif']],
    ['JPEG', ['stardist', 'histo.jpg']],
  ] as const) {
    test(what, { skip: needs([...parts]) }, async () => {
      const path = fixture(...parts);
      const slide = await openSlide(path);
      const { width, height } = slide.levels[0];
      const ours = await slide.readRegion({ x: 0, y: 0, level: 0, width, height });
      const ref = await readPng(path); // sharp decodes any format it knows
      const d = compareRgba(ours, ref, 0);
      assert.equal(d.bad + d.alphaMismatch, 0, `${d.bad} pixels differ (max ${d.maxDiff})`);
      await slide.close();
    });
  }

  test('16-bit greyscale is scaled to 8 bits for display', async () => {
    const path = fixture('stardist', 'img2d.tif');
    const slide = await openSlide(path);
    const ours = await slide.readRegion({ x: 0, y: 0, level: 0, width: 512, height: 512 });
    // The raw samples, read straight from the file's single uncompressed little-endian strip.
    const tiff = await parseTiff(await FileByteSource.open(path));
    const ifd = tiff.ifds[0];
    assert.deepEqual([ifd.number(258), ifd.number(259), ifd.number(278)], [16, 1, 512]);
    const bytes = readFileSync(path).subarray(ifd.number(273)!, ifd.number(273)! + 512 * 512 * 2);
    const u16 = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const raw = { info: { channels: 1 } };
    for (let p = 0; p < 512 * 512; p += 97) {
      assert.equal(ours.data[p * 4], Math.round(u16[p * raw.info.channels] / 257), `pixel ${p}`);
      assert.equal(ours.data[p * 4 + 3], 255);
    }
    await slide.close();
  });
});

describe('decoding in a worker pool', () => {
  test('JPEG 2000 and JPEG slides read the same pixels with workers as in this thread', {
    skip: needs(['slides', 'tcga-cr-7395-01a-01-ts1.svs']),
  }, async () => {
    for (const [name, file] of [
      ['tcga-cr-7395-01a-01-ts1', 'region-00.png'],
      ['cmu-1-small-region', 'region-08.png'],
    ]) {
      const slide = await openSlide(fixture('slides', `${name}.svs`), { workers: 1, cacheBytes: 1 << 20 });
      const { regions } = (
        await import(fixture('openslide', name, 'regions.json'), { with: { type: 'json' } })
      ).default as {
        regions: { file: string; x: number; y: number; level: number; width: number; height: number }[];
      };
      const r = regions.find((q) => q.file === file)!;
      const [ours, ref] = await Promise.all([slide.readRegion(r), readPng(fixture('openslide', name, file))]);
      const d = compareRgba(ours, ref);
      assert.equal(d.alphaMismatch, 0);
      assert.ok(d.bad <= d.compared * 0.001, `${d.bad} pixels off`);
      await slide.close();
    }
  });
});

describe('resolution-aware reads', () => {
  test('readRegionAtMpp at twice the level-0 mpp gives the pyramid’s 2x2-mean level', {
    skip: needs(['derived', 'cmu-1-pyramid-subifds.ome.tif']),
  }, async () => {
    const slide = await openSlide(fixture('derived', 'cmu-1-pyramid-subifds.ome.tif'));
    const mpp = slide.mpp!.x * 2;
    const got = await slide.readRegionAtMpp({ x: 200, y: 300, mpp, width: 160, height: 120 });
    const level1 = await slide.readRegion({ x: 200, y: 300, level: 1, width: 160, height: 120 });
    const d = compareRgba(got, level1, 1);
    assert.equal(d.bad + d.alphaMismatch, 0, `max diff ${d.maxDiff}`);
    await slide.close();
  });

  test('readRegionAtMpp between levels resamples from the finer level (area filter)', async () => {
    const slide = await openSlide(fixture('slides', 'cmu-1-small-region.svs'));
    const got = await slide.readRegionAtMpp({ x: 400, y: 600, mpp: slide.mpp!.x * 4, width: 64, height: 64 });
    const full = await slide.readRegion({ x: 400, y: 600, level: 0, width: 256, height: 256 });
    // Independent reference: plain 4x4 block means.
    let worst = 0;
    for (let y = 0; y < 64; y++) {
      for (let x = 0; x < 64; x++) {
        for (let k = 0; k < 3; k++) {
          let sum = 0;
          for (let dy = 0; dy < 4; dy++)
            for (let dx = 0; dx < 4; dx++) sum += full.data[((4 * y + dy) * 256 + 4 * x + dx) * 4 + k];
          worst = Math.max(worst, Math.abs(got.data[(y * 64 + x) * 4 + k] - sum / 16));
        }
      }
    }
    assert.ok(worst <= 0.5, `worst ${worst}`);
    await slide.close();
  });

  test('thumbnail keeps the aspect ratio and looks like a libvips downscale', async () => {
    const slide = await openSlide(fixture('slides', 'cmu-1-small-region.svs'));
    const thumb = await slide.thumbnail(256);
    assert.deepEqual([thumb.width, thumb.height], [192, 256]);
    const { width, height } = slide.levels[0];
    const full = await slide.readRegion({ x: 0, y: 0, level: 0, width, height });
    const ref = await sharp(full.data, { raw: { width, height, channels: 4 } })
      .resize(192, 256, { fit: 'fill', kernel: 'cubic' })
      .raw()
      .toBuffer();
    let sum = 0;
    for (let i = 0; i < ref.length; i++) if (i % 4 !== 3) sum += Math.abs(ref[i] - thumb.data[i]);
    assert.ok(sum / ((ref.length * 3) / 4) < 3, `mean abs diff ${sum / ((ref.length * 3) / 4)}`);
    await slide.close();
  });
});

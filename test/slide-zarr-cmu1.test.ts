/**
 * The derived CMU-1 OME-Zarrs against OpenSlide: their level 0 is OpenSlide's read of the 1280×1536 region at
 * (512, 768) of cmu-1-small-region.svs, so OpenSlide's golden level-0 regions, translated by (-512, -768) and
 * clipped to that area, must match (±2 for ≥ 99.9% of pixels: the zarr holds OpenSlide's own decode). Lower
 * levels are the 2×2 means of level 0 (±1) and equal between the v2 c,y,x and the 5-D t,c,z,y,x encodings.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import sharp from 'sharp';
import { readNpy } from '../src/io/npy.ts';
import type { PyramidSource, RGBAImage } from '../src/slide/types.ts';
import { openOmeZarr } from '../src/slide/zarr/index.ts';
import { fixture, needs } from './fixtures.ts';

const OFFSET = { x: 512, y: 768 };
const SIZE = { width: 1280, height: 1536 };

interface GoldenRegion {
  file: string;
  x: number;
  y: number;
  level: number;
  width: number;
  height: number;
}

async function png(path: string): Promise<RGBAImage> {
  const { data, info } = await sharp(path).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

for (const name of ['cmu-1.ome.zarr', 'cmu-1-5d.ome.zarr']) {
  test(`${name}: level 0 equals OpenSlide's golden regions of cmu-1-small-region.svs`, {
    skip: needs(['derived']),
  }, async () => {
    const slide = await openOmeZarr(fixture('derived', name));
    // Per file: the vendored copy of this folder lacks the large region-08.png, which the shared one has.
    const goldenFile = (file: string) => fixture('openslide', 'cmu-1-small-region', file);
    const { regions } = JSON.parse(await readFile(goldenFile('regions.json'), 'utf8')) as {
      regions: GoldenRegion[];
    };
    let compared = 0;
    let within = 0;
    let regionsUsed = 0;
    for (const r of regions.filter((g) => g.level === 0)) {
      // The part of the golden region inside the derived area, in derived level-0 pixels.
      const x0 = Math.max(r.x, OFFSET.x) - OFFSET.x;
      const y0 = Math.max(r.y, OFFSET.y) - OFFSET.y;
      const x1 = Math.min(r.x + r.width, OFFSET.x + SIZE.width) - OFFSET.x;
      const y1 = Math.min(r.y + r.height, OFFSET.y + SIZE.height) - OFFSET.y;
      if (x1 <= x0 || y1 <= y0) continue;
      regionsUsed++;
      const golden = await png(goldenFile(r.file));
      const ours = await slide.readLevel(0, x0, y0, x1 - x0, y1 - y0);
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const g = ((y + OFFSET.y - r.y) * golden.width + (x + OFFSET.x - r.x)) * 4;
          const o = ((y - y0) * ours.width + (x - x0)) * 4;
          assert.equal(golden.data[g + 3], 255, 'golden pixel inside the slide is opaque');
          let ok = ours.data[o + 3] === 255;
          for (let k = 0; k < 3; k++) ok &&= Math.abs(ours.data[o + k] - golden.data[g + k]) <= 2;
          compared++;
          if (ok) within++;
        }
      }
    }
    assert.ok(regionsUsed >= 2, `at least two golden regions overlap the derived area (${regionsUsed})`);
    assert.ok(compared > 1024 * 1024, `compared ${compared} pixels`);
    assert.ok(within / compared >= 0.999, `${within}/${compared} pixels within ±2`);
    await slide.close();
  });
}

async function wholeLevel(slide: PyramidSource, level: number): Promise<RGBAImage> {
  const { width, height } = slide.levels[level];
  return slide.readLevel(level, 0, 0, width, height);
}

test('derived OME-Zarrs: lower levels are 2×2 means of level 0 and equal across both encodings; shapes match the .npy', {
  skip: needs(['derived']),
}, async () => {
  const a = await openOmeZarr(fixture('derived', 'cmu-1.ome.zarr'));
  const b = await openOmeZarr(fixture('derived', 'cmu-1-5d.ome.zarr'));
  const shapes = await readNpy(fixture('derived', 'cmu-1-levels-shapes.npy'));
  const rows = Array.from(shapes.data as ArrayLike<number | bigint>, Number);
  assert.equal(rows.length, a.levels.length * 3);
  for (const slide of [a, b]) {
    slide.levels.forEach((l, i) => {
      // Rows are (height, width, channels).
      assert.deepEqual([l.height, l.width, 3], rows.slice(i * 3, i * 3 + 3));
    });
  }
  let previous = await wholeLevel(a, 0);
  for (let level = 1; level < a.levels.length; level++) {
    const la = await wholeLevel(a, level);
    const lb = await wholeLevel(b, level);
    assert.deepEqual(la.data, lb.data, `level ${level} equal in both zarrs`);
    let worst = 0;
    for (let y = 0; y < la.height; y++) {
      for (let x = 0; x < la.width; x++) {
        for (let k = 0; k < 3; k++) {
          let sum = 0;
          for (const [dx, dy] of [
            [0, 0],
            [1, 0],
            [0, 1],
            [1, 1],
          ]) {
            sum += previous.data[((2 * y + dy) * previous.width + 2 * x + dx) * 4 + k];
          }
          worst = Math.max(worst, Math.abs(la.data[(y * la.width + x) * 4 + k] - sum / 4));
        }
      }
    }
    assert.ok(
      worst <= 1,
      `level ${level}: worst difference to the 2×2 mean of level ${level - 1} is ${worst}`,
    );
    previous = la;
  }
  await a.close();
  await b.close();
});

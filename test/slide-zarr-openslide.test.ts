/**
 * OME-Zarr through `openSlide()` (dispatch by the `.zarr` folder) and `PyramidSlide`: OpenSlide semantics on
 * top of our source — level-0 coordinates, transparent outside, best level — against OpenSlide's golden reads
 * of cmu-1-small-region.svs translated into the derived image's frame (origin at svs (512, 768)).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import sharp from 'sharp';
import { openSlide } from '../src/slide/index.ts';
import { openOmeZarr } from '../src/slide/zarr/index.ts';
import { fixture, needs } from './fixtures.ts';

const OFFSET = { x: 512, y: 768 };
const SIZE = { width: 1280, height: 1536 };

test('openSlide(cmu-1.ome.zarr): golden OpenSlide regions, translated; alpha 0 outside the image', {
  skip: needs(['derived']),
}, async () => {
  const slide = await openSlide(fixture('derived', 'cmu-1.ome.zarr'));
  assert.equal(slide.format, 'ome-zarr');
  assert.deepEqual(
    slide.levels.map((l) => [l.width, l.height, l.downsample]),
    [
      [1280, 1536, 1],
      [640, 768, 2],
      [320, 384, 4],
      [160, 192, 8],
    ],
  );
  assert.deepEqual(slide.mpp, { x: 0.499, y: 0.499 });
  assert.equal(slide.getBestLevelForDownsample(3), 1);
  assert.equal(slide.getBestLevelForDownsample(100), 3);

  // Per file: the vendored copy of this folder lacks the large region-08.png, which the shared one has.
  const goldenFile = (file: string) => fixture('openslide', 'cmu-1-small-region', file);
  const { regions } = JSON.parse(await readFile(goldenFile('regions.json'), 'utf8')) as {
    regions: { file: string; x: number; y: number; level: number; width: number; height: number }[];
  };
  let inside = 0;
  let within = 0;
  let outside = 0;
  for (const r of regions.filter((g) => g.level === 0)) {
    const { data: golden } = await sharp(goldenFile(r.file))
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const ours = await slide.readRegion({
      x: r.x - OFFSET.x,
      y: r.y - OFFSET.y,
      level: 0,
      width: r.width,
      height: r.height,
    });
    for (let y = 0; y < r.height; y++) {
      for (let x = 0; x < r.width; x++) {
        const p = (y * r.width + x) * 4;
        const dx = r.x - OFFSET.x + x;
        const dy = r.y - OFFSET.y + y;
        if (dx < 0 || dy < 0 || dx >= SIZE.width || dy >= SIZE.height) {
          assert.equal(ours.data[p + 3], 0, `alpha outside the image at (${dx}, ${dy})`);
          outside++;
          continue;
        }
        inside++;
        let ok = ours.data[p + 3] === 255;
        for (let k = 0; k < 3; k++) ok &&= Math.abs(ours.data[p + k] - golden[p + k]) <= 2;
        if (ok) within++;
      }
    }
  }
  assert.ok(inside > 1024 * 1024 && outside > 10000, `inside ${inside}, outside ${outside}`);
  assert.ok(within / inside >= 0.999, `${within}/${inside} within ±2`);
  await slide.close();
});

test('openSlide(cmu-1-5d.ome.zarr): level-1 readRegion equals the source level read; 5-D and 3-D agree', {
  skip: needs(['derived']),
}, async () => {
  const slide = await openSlide(fixture('derived', 'cmu-1-5d.ome.zarr'));
  const source = await openOmeZarr(fixture('derived', 'cmu-1.ome.zarr'));
  // Level-0 (200, 300) is level-1 (100, 150).
  const region = await slide.readRegion({ x: 200, y: 300, level: 1, width: 300, height: 200 });
  const direct = await source.readLevel(1, 100, 150, 300, 200);
  assert.deepEqual(region.data, direct.data);
  await slide.close();
  await source.close();
});

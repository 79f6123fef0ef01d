/**
 * The CMU-1 crop re-encoded by other writers (tifffile OME-TIFF with SubIFDs, BigTIFF with one page per
 * level): level 0 must match OpenSlide's reads of the SVS, and lower levels must agree across files.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { openSlide, type Slide } from '../src/slide/index.ts';
import { fixture, needs } from './fixtures.ts';
import { compareRgba, readPng } from './slide-helpers.ts';

const MISSING = needs(['derived']);
if (MISSING) test('derived TIFF pyramids of CMU-1', { skip: MISSING }, () => {});
else await derivedTiffTests();

async function derivedTiffTests(): Promise<void> {
  interface DerivedReadme {
    levels: [number, number, number][];
    mpp_level0: number;
    offset_in_svs_level0: [number, number];
  }
  const readme = JSON.parse(readFileSync(fixture('derived', 'README.json'), 'utf8')) as DerivedReadme;
  const [OX, OY] = readme.offset_in_svs_level0;
  const [H0, W0] = readme.levels[0];
  const { regions } = JSON.parse(
    readFileSync(fixture('openslide', 'cmu-1-small-region', 'regions.json'), 'utf8'),
  ) as {
    regions: { file: string; x: number; y: number; level: number; width: number; height: number }[];
  };

  function isTiff(path: string): boolean {
    const head = readFileSync(path).subarray(0, 4);
    return (head[0] === 0x49 && head[1] === 0x49) || (head[0] === 0x4d && head[1] === 0x4d);
  }
  const files = readdirSync(fixture('derived')).filter(
    (f) => /\.tiff?$/.test(f) && isTiff(fixture('derived', f)),
  );

  describe('derived TIFF pyramids of CMU-1', () => {
    const slides = new Map<string, Slide>();
    before(async () => {
      for (const f of files) slides.set(f, await openSlide(fixture('derived', f)));
    });
    after(async () => {
      for (const s of slides.values()) await s.close();
    });

    test('there are TIFF files to check', () => {
      assert.ok(files.length >= 2, `found ${files.join(', ')}`);
    });

    for (const f of files) {
      test(`${f}: levels as written`, () => {
        const s = slides.get(f)!;
        assert.deepEqual(
          s.levels.map((l) => [l.height, l.width, 3]),
          readme.levels,
        );
        assert.deepEqual(
          s.levels.map((l) => l.downsample),
          [1, 2, 4, 8],
        );
        assert.ok(s.mpp, 'mpp known');
        assert.ok(
          Math.abs(s.mpp.x - readme.mpp_level0) < 1e-4 && Math.abs(s.mpp.y - readme.mpp_level0) < 1e-4,
        );
      });

      for (const r of regions.filter((r) => r.level === 0)) {
        test(`${f}: ${r.file} translated into the crop matches OpenSlide`, async () => {
          const s = slides.get(f)!;
          const [actual, expected] = await Promise.all([
            s.readRegion({ ...r, x: r.x - OX, y: r.y - OY }),
            readPng(fixture('openslide', 'cmu-1-small-region', r.file)),
          ]);
          const insideCrop = (x: number, y: number) => {
            const sx = r.x + x - OX;
            const sy = r.y + y - OY;
            return sx >= 0 && sy >= 0 && sx < W0 && sy < H0;
          };
          const d = compareRgba(actual, expected, 2, insideCrop);
          assert.equal(d.alphaMismatch, 0, 'alpha inside the crop');
          assert.ok(
            d.bad <= d.compared * 0.001,
            `${d.bad} of ${d.compared} pixels off by more than 2 (max ${d.maxDiff})`,
          );
          // Outside the crop the derived slide has no pixels: fully transparent.
          for (let y = 0; y < r.height; y++) {
            for (let x = 0; x < r.width; x++) {
              if (!insideCrop(x, y))
                assert.equal(actual.data[(y * r.width + x) * 4 + 3], 0, `alpha at ${x},${y}`);
            }
          }
        });
      }
    }

    test('lower levels agree across files and are 2x2 means of the level above', async () => {
      const [first, ...others] = [...slides.values()];
      for (let level = 1; level < first.levels.length; level++) {
        const { width, height } = first.levels[level];
        const a = await first.readRegion({ x: 0, y: 0, level, width, height });
        for (const other of others) {
          const b = await other.readRegion({ x: 0, y: 0, level, width, height });
          const d = compareRgba(b, a, 0);
          assert.equal(
            d.bad,
            0,
            `level ${level}: ${d.bad} pixels differ between ${first.source} and ${other.source}`,
          );
          assert.equal(d.alphaMismatch, 0);
        }
        const up = await first.readRegion({
          x: 0,
          y: 0,
          level: level - 1,
          width: width * 2,
          height: height * 2,
        });
        let worst = 0;
        for (let y = 0; y < height; y++) {
          for (let x = 0; x < width; x++) {
            for (let k = 0; k < 3; k++) {
              const at = (yy: number, xx: number) => up.data[(yy * width * 2 + xx) * 4 + k];
              const mean =
                (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1)) /
                4;
              worst = Math.max(worst, Math.abs(a.data[(y * width + x) * 4 + k] - mean));
            }
          }
        }
        assert.ok(worst <= 1, `level ${level} differs from the 2x2 mean of level ${level - 1} by ${worst}`);
      }
    });
  });
}

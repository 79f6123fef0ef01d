/** Parity with OpenSlide 3.4.1: properties, levels, best levels, associated images and every golden region. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { openSlide, type Slide } from '../src/slide/index.ts';
import { fixture, listFixtures, needs } from './fixtures.ts';
import { compareRgba, readPng } from './slide-helpers.ts';

interface Properties {
  level_count: number;
  level_dimensions: [number, number][];
  level_downsamples: number[];
  properties: Record<string, string>;
  associated_images: Record<string, [number, number]>;
  best_level_for_downsample: Record<string, number>;
}
interface Regions {
  regions: { file: string; x: number; y: number; level: number; width: number; height: number }[];
}

/** Properties we do not reproduce: OpenSlide's quickhash-1 hashes raw tile bytes with its own scheme. */
const NOT_REPRODUCED = new Set(['openslide.quickhash-1']);

for (const name of listFixtures('openslide')) {
  const missing = needs(
    ['openslide', name, 'properties.json'],
    ['openslide', name, 'regions.json'],
    ['slides', `${name}.svs`],
  );
  describe(`OpenSlide parity: ${name}`, { skip: missing }, () => {
    if (missing) return;
    const golden = JSON.parse(
      readFileSync(fixture('openslide', name, 'properties.json'), 'utf8'),
    ) as Properties;
    const { regions } = JSON.parse(
      readFileSync(fixture('openslide', name, 'regions.json'), 'utf8'),
    ) as Regions;
    let slide: Slide;
    const open = async () => {
      slide ??= await openSlide(fixture('slides', `${name}.svs`));
      return slide;
    };
    after(() => slide?.close());

    test('levels, downsamples, mpp, objective power', async () => {
      const s = await open();
      assert.equal(s.format, 'aperio-svs');
      assert.equal(s.levels.length, golden.level_count);
      assert.deepEqual(
        s.levels.map((l) => [l.width, l.height]),
        golden.level_dimensions,
      );
      assert.deepEqual(
        s.levels.map((l) => l.downsample),
        golden.level_downsamples,
      );
      const p = golden.properties;
      assert.deepEqual(
        s.mpp,
        p['openslide.mpp-x'] ? { x: Number(p['openslide.mpp-x']), y: Number(p['openslide.mpp-y']) } : null,
      );
      assert.equal(
        s.objectivePower,
        p['openslide.objective-power'] ? Number(p['openslide.objective-power']) : null,
      );
    });

    test('every OpenSlide property', async () => {
      const s = await open();
      const expected = Object.fromEntries(
        Object.entries(golden.properties).filter(([k]) => !NOT_REPRODUCED.has(k)),
      );
      assert.deepEqual({ ...s.properties }, expected);
    });

    test('best level for downsample', async () => {
      const s = await open();
      for (const [ds, level] of Object.entries(golden.best_level_for_downsample)) {
        assert.equal(s.getBestLevelForDownsample(Number(ds)), level, `downsample ${ds}`);
      }
    });

    test('associated images', async () => {
      const s = await open();
      assert.deepEqual([...s.associatedImages].sort(), Object.keys(golden.associated_images).sort());
      for (const [assoc, [w, h]] of Object.entries(golden.associated_images)) {
        const img = await s.readAssociatedImage(assoc);
        assert.deepEqual([img.width, img.height], [w, h], assoc);
        assert.equal(img.data.length, w * h * 4);
      }
    });

    for (const r of regions) {
      const skip = needs(['openslide', name, r.file]);
      test(`region ${r.file}: (${r.x}, ${r.y}) level ${r.level} ${r.width}x${r.height}`, {
        skip,
      }, async () => {
        const s = await open();
        const [actual, expected] = await Promise.all([
          s.readRegion(r),
          readPng(fixture('openslide', name, r.file)),
        ]);
        const d = compareRgba(actual, expected);
        assert.equal(d.alphaMismatch, 0, 'alpha must match exactly');
        assert.ok(
          d.bad <= d.compared * 0.001,
          `${d.bad} of ${d.compared} pixels off by more than 2 (max ${d.maxDiff})`,
        );
      });
    }
  });
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createRng,
  detectTissue,
  foregroundGridSampler,
  foregroundRandomSampler,
  gridSampler,
  multiMagnificationSampler,
  openSlideByPath,
  type PatchSpec,
  randomSampler,
  type Sampler,
  type SlideGeometry,
  TissueCoverage,
  type TissueMask,
} from '../src/patching/index.ts';
import { chooseTissueLevel } from '../src/patching/tissue.ts';
import { fixture, needs } from './fixtures.ts';

/** A 3-level geometry like a 40x scan (0.25 µm/px) without pixels: samplers only look at the geometry. */
const geometry: SlideGeometry = {
  source: 'synthetic',
  mpp: { x: 0.25, y: 0.25 },
  levels: [
    { width: 8000, height: 6000, downsample: 1, tileWidth: 256, tileHeight: 256 },
    { width: 2000, height: 1500, downsample: 4, tileWidth: 256, tileHeight: 256 },
    { width: 500, height: 375, downsample: 16, tileWidth: 256, tileHeight: 256 },
  ],
};

/** Tissue = a disc in the middle of the slide, on a 400×300 mask. */
function discTissue(): TissueMask {
  const [w, h] = [400, 300];
  const mask = new Uint8Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) mask[y * w + x] = (x - 200) ** 2 + (y - 150) ** 2 < 100 ** 2 ? 1 : 0;
  return {
    mask,
    width: w,
    height: h,
    downsample: 20,
    threshold: 0,
    slideWidth: 8000,
    slideHeight: 6000,
    level: 2,
  };
}

function take(sampler: Sampler, n: number, seed: number, tissue?: TissueCoverage): PatchSpec[] {
  const it = sampler.specs({ slide: geometry, rng: createRng(seed), tissue });
  const out: PatchSpec[] = [];
  for (let i = 0; i < n; i++) {
    const step = it.next();
    if (step.done) break;
    out.push(step.value);
  }
  return out;
}

function assertInside(s: PatchSpec) {
  assert.ok(s.x >= 0 && s.y >= 0, `corner ${s.x},${s.y}`);
  assert.ok(
    s.x + s.width * s.downsample <= 8000 + 1e-6 && s.y + s.height * s.downsample <= 6000 + 1e-6,
    `spec ${JSON.stringify(s)}`,
  );
}

test('grid: every tile inside, stride = size - overlap, count = floor((W - F) / S) + 1, by level or by mpp', () => {
  const byLevel = take(gridSampler({ size: 512, overlap: 64, level: 1 }), 1e6, 0);
  const [f, s] = [512 * 4, (512 - 64) * 4];
  const nx = Math.floor((8000 - f) / s) + 1;
  const ny = Math.floor((6000 - f) / s) + 1;
  assert.equal(byLevel.length, nx * ny);
  byLevel.forEach(assertInside);
  assert.deepEqual([byLevel[1].x - byLevel[0].x, byLevel[nx].y - byLevel[0].y], [s, s]);
  assert.deepEqual([byLevel[0].level, byLevel[0].mpp, byLevel[0].downsample], [1, 1, 4]);
  // 0.5 µm/px on a 0.25 µm/px slide: 2x downsample, read from level 0 (best level below 2x).
  const byMpp = take(gridSampler({ size: 256, mpp: 0.5 }), 1e6, 0);
  assert.equal(byMpp.length, Math.floor(8000 / 512) * Math.floor(6000 / 512));
  assert.deepEqual([byMpp[0].level, byMpp[0].mpp, byMpp[0].downsample], [0, 0.5, 2]);
  byMpp.forEach(assertInside);
  // includePartial: the last row and column reach past the slide edge so the grid covers everything.
  const partial = take(gridSampler({ size: 256, mpp: 0.5, includePartial: true }), 1e6, 0);
  assert.equal(partial.length, Math.ceil(8000 / 512) * Math.ceil(6000 / 512));
  const last = partial[partial.length - 1];
  assert.ok(last.x + 512 >= 8000 && last.y + 512 >= 6000);
});

test('uniform random: same seed → same patches, other seed → others, all inside, spread over the slide', () => {
  const sampler = randomSampler({ size: 224, level: 0 });
  const a = take(sampler, 500, 42);
  assert.deepEqual(take(sampler, 500, 42), a);
  assert.notDeepEqual(take(sampler, 500, 43), a);
  a.forEach(assertInside);
  const meanX = a.reduce((m, s) => m + s.x, 0) / a.length;
  assert.ok(Math.abs(meanX - (8000 - 224) / 2) < 400, `mean x ${meanX}`);
  assert.ok(a.some((s) => s.x < 1000) && a.some((s) => s.x > 6500));
});

test('tissue coverage: exact area-weighted fraction for rectangles that cut mask pixels', () => {
  const tissue = discTissue();
  const cov = new TissueCoverage(tissue);
  const rng = createRng(9);
  for (let k = 0; k < 200; k++) {
    const x = rng.uniform(-100, 7000);
    const y = rng.uniform(-100, 5000);
    const w = rng.uniform(1, 1500);
    const h = rng.uniform(1, 1500);
    // Brute force: overlap area of the rectangle with every tissue mask pixel.
    let area = 0;
    for (let my = Math.max(0, Math.floor(y / 20)); my < Math.min(300, Math.ceil((y + h) / 20)); my++) {
      for (let mx = Math.max(0, Math.floor(x / 20)); mx < Math.min(400, Math.ceil((x + w) / 20)); mx++) {
        if (!tissue.mask[my * 400 + mx]) continue;
        const ox = Math.min(x + w, (mx + 1) * 20) - Math.max(x, mx * 20);
        const oy = Math.min(y + h, (my + 1) * 20) - Math.max(y, my * 20);
        area += ox * oy;
      }
    }
    assert.ok(Math.abs(cov.fraction(x, y, w, h) - area / (w * h)) < 1e-9, `rect ${x},${y},${w},${h}`);
  }
});

test('foreground random: reproducible, every patch reaches the minimum tissue fraction, covers the disc', () => {
  const cov = new TissueCoverage(discTissue());
  for (const minTissue of [0.3, 0.9]) {
    const sampler = foregroundRandomSampler({ size: 256, mpp: 1, minTissue });
    const a = take(sampler, 300, 7, cov);
    assert.deepEqual(take(sampler, 300, 7, cov), a);
    for (const s of a) {
      assertInside(s);
      assert.ok(cov.fraction(s.x, s.y, 1024, 1024) >= minTissue);
    }
    // Patches spread over the whole disc (radius 2000 level-0 px around 4000, 3000).
    const cx = a.map((s) => s.x + 512);
    assert.ok(
      Math.min(...cx) < 2800 && Math.max(...cx) > 5200,
      `x range ${Math.min(...cx)}..${Math.max(...cx)}`,
    );
  }
});

test('foreground grid: exactly the grid tiles whose tissue fraction reaches the minimum', () => {
  const cov = new TissueCoverage(discTissue());
  const all = take(gridSampler({ size: 256, level: 1 }), 1e6, 0);
  const fg = take(foregroundGridSampler({ size: 256, level: 1, minTissue: 0.5 }), 1e6, 0, cov);
  const expected = all.filter((s) => cov.fraction(s.x, s.y, 1024, 1024) >= 0.5);
  assert.deepEqual(fg, expected);
  assert.ok(fg.length > 0 && fg.length < all.length);
});

test('multi-magnification: each mpp of the list is used, footprint and level follow the mpp', () => {
  const cov = new TissueCoverage(discTissue());
  const specs = take(multiMagnificationSampler({ mpps: [0.25, 1, 2.5], size: 128 }), 300, 1, cov);
  const byMpp = new Map<number | null, PatchSpec[]>();
  for (const s of specs) byMpp.set(s.mpp, [...(byMpp.get(s.mpp) ?? []), s]);
  assert.deepEqual([...byMpp.keys()].sort(), [0.25, 1, 2.5]);
  for (const [mpp, list] of byMpp) {
    assert.ok(list.length > 50, `${mpp}: ${list.length}`);
    for (const s of list) {
      assert.equal(s.downsample, (mpp as number) / 0.25);
      assert.equal(s.level, s.downsample >= 16 ? 2 : s.downsample >= 4 ? 1 : 0);
      assertInside(s);
      assert.ok(cov.fraction(s.x, s.y, 128 * s.downsample, 128 * s.downsample) >= 0.5);
    }
  }
  assert.deepEqual(take(multiMagnificationSampler({ mpps: [0.25, 1, 2.5], size: 128 }), 300, 1, cov), specs);
});

test('clear errors: no tissue, patch larger than the slide, mpp without slide mpp, bad options', () => {
  const empty = new TissueCoverage({ ...discTissue(), mask: new Uint8Array(400 * 300) });
  assert.throws(
    () => take(foregroundRandomSampler({ size: 256 }), 1, 0, empty),
    /synthetic: no tissue detected/,
  );
  assert.throws(
    () => take(randomSampler({ size: 4096, level: 1 }), 1, 0),
    /does not fit in the 8000x6000 slide/,
  );
  const noMpp = { ...geometry, mpp: null };
  assert.throws(
    () =>
      randomSampler({ mpp: 0.5 })
        .specs({ slide: noMpp, rng: createRng(0) })
        .next(),
    /no mpp/,
  );
  assert.throws(() => take(gridSampler({ size: 256, overlap: 256 }), 1, 0), /overlap/);
  assert.throws(() => take(gridSampler({ level: 5 }), 1, 0), /level 5 does not exist/);
  assert.throws(() => foregroundRandomSampler({ minTissue: 2 }), /minTissue/);
  assert.throws(() => multiMagnificationSampler({ mpps: [] }), /non-empty/);
});

test('tissue level choice: the smallest level still ≥ maxSize; a real two-level SVS', {
  skip: needs(['slides', 'tcga-cr-7395-01a-01-ts1.svs']),
}, async () => {
  assert.equal(chooseTissueLevel(geometry.levels, 1536), 1);
  assert.equal(chooseTissueLevel(geometry.levels, 400), 2);
  assert.equal(chooseTissueLevel(geometry.levels, 10000), 0);
  const slide = await openSlideByPath(fixture('slides', 'tcga-cr-7395-01a-01-ts1.svs'));
  try {
    const t = await detectTissue(slide, { maxSize: 1024 });
    assert.equal(t.level, 1);
    assert.equal(Math.max(t.width, t.height), 1024);
    const cov = new TissueCoverage(t);
    const specs: PatchSpec[] = [];
    const it = foregroundRandomSampler({ size: 256, level: 0, minTissue: 0.75 }).specs({
      slide,
      rng: createRng(3),
      tissue: cov,
    });
    for (let i = 0; i < 50; i++) specs.push(it.next().value as PatchSpec);
    for (const s of specs) assert.ok(cov.fraction(s.x, s.y, 256, 256) >= 0.75);
  } finally {
    await slide.close();
  }
});

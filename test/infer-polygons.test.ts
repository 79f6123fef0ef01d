/**
 * Full-resolution streamed polygons, checked with shapely (Debian's python3-shapely, the GEOS/JTS rules QuPath and
 * GIS tools apply): every polygon valid, area = pixel count, a nucleus keeps its pixel outline, a nucleus cut by a
 * band border is one polygon, and the QuPath properties and rounding are as documented.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { toGeoJSON } from '../src/annotations/geojson.ts';
import { labelPolygons } from '../src/infer/contours.ts';
import { componentPolygons, PolygonStreamer, type PolygonStreamOptions } from '../src/infer/polygons.ts';

const PY = '/usr/bin/python3';
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'infer-polygons-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Streams `mask` in bands of `band` rows and returns the parsed GeoJSON. */
async function polygonsOf(
  mask: Uint8Array,
  width: number,
  height: number,
  band: number,
  extra: Partial<PolygonStreamOptions> = {},
) {
  const path = join(dir, `p-${Math.random().toString(36).slice(2)}.geojson`);
  const s = new PolygonStreamer({
    path,
    mode: 'objects',
    width,
    classes: { 1: { name: 'nucleus', color: [200, 0, 0] }, 2: { name: 'stroma', color: [0, 200, 0] } },
    ...extra,
  });
  for (let y = 0; y < height; y += band) {
    const h = Math.min(band, height - y);
    await s.addBand(mask.subarray(y * width, (y + h) * width), h);
  }
  const summary = await s.finish();
  return { path, summary, doc: JSON.parse(await readFile(path, 'utf8')) };
}

/** shapely's verdict per feature: [is_valid, explain_validity, area]. */
function shapely(path: string): [boolean, string, number][] {
  const script = `
import json, sys
from shapely.geometry import shape
from shapely.validation import explain_validity
doc = json.load(open(sys.argv[1]))
print(json.dumps([[g.is_valid, explain_validity(g), g.area] for g in (shape(f['geometry']) for f in doc['features'])]))
`;
  return JSON.parse(execFileSync(PY, ['-c', script, path], { encoding: 'utf8' }));
}

/** 4-connected components (reference flood fill): per component, its value and pixel count. */
function components(mask: Uint8Array, w: number, h: number): { value: number; pixels: number }[] {
  const seen = new Uint8Array(mask.length);
  const out: { value: number; pixels: number }[] = [];
  for (let i = 0; i < mask.length; i++) {
    if (seen[i] || mask[i] === 0) continue;
    const v = mask[i]!;
    let n = 0;
    const stack = [i];
    seen[i] = 1;
    while (stack.length) {
      const p = stack.pop()!;
      n++;
      const x = p % w;
      const y = (p - x) / w;
      for (const [nx, ny] of [
        [x + 1, y],
        [x - 1, y],
        [x, y + 1],
        [x, y - 1],
      ] as const) {
        const q = ny * w + nx;
        if (nx >= 0 && ny >= 0 && nx < w && ny < h && !seen[q] && mask[q] === v) {
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
    out.push({ value: v, pixels: n });
  }
  return out;
}

/** A deterministic pseudo-random generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('random label maps: every polygon valid in shapely, one feature per 4-connected component, area = pixels', async () => {
  // Noise at several densities: full of diagonal contacts, holes touching shells and holes touching holes.
  for (const [seed, density] of [
    [1, 0.5],
    [2, 0.35],
    [3, 0.65],
    [4, 0.8],
  ] as const) {
    const W = 61;
    const H = 47;
    const r = rng(seed);
    const mask = new Uint8Array(W * H);
    for (let i = 0; i < mask.length; i++) mask[i] = r() < density ? (r() < 0.7 ? 1 : 2) : 0;
    const { path, doc, summary } = await polygonsOf(mask, W, H, 7);
    const verdicts = shapely(path);
    const bad = verdicts.filter((v) => !v[0]);
    assert.deepEqual(bad, [], `seed ${seed}: invalid polygons`);
    const ref = components(mask, W, H);
    assert.equal(doc.features.length, ref.length, `seed ${seed}: one feature per component`);
    // Areas (level-0 px², scale 1) are pixel counts: same multiset per class as the reference components.
    const key = (name: string, n: number) => `${name}:${n}`;
    const names: Record<number, string> = { 1: 'nucleus', 2: 'stroma' };
    const want = ref.map((c) => key(names[c.value]!, c.pixels)).sort();
    const got = doc.features
      .map((f: { properties: { classification: { name: string } } }, i: number) =>
        key(f.properties.classification.name, Math.round(verdicts[i]![2])),
      )
      .sort();
    assert.deepEqual(got, want, `seed ${seed}: component areas`);
    for (const [i, f] of doc.features.entries()) {
      assert.equal(verdicts[i]![2], f.properties.measurements['Area µm^2'], 'area property = polygon area');
    }
    assert.ok(summary.splits > 0 || seed > 1, 'the noise exercised ring splitting');
  }
});

test('a 10-px-wide nucleus keeps its pixel outline; a nucleus cut by band borders is one polygon', async () => {
  const W = 40;
  const H = 40;
  const mask = new Uint8Array(W * H);
  // A disc of diameter 10 centred at (20, 20): straddles the band borders at rows 16 and 24 (bands of 8).
  let pixels = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if ((x + 0.5 - 20) ** 2 + (y + 0.5 - 20) ** 2 <= 25) {
        mask[y * W + x] = 1;
        pixels++;
      }
    }
  }
  const { path, doc } = await polygonsOf(mask, W, H, 8, { scaleX: 2, scaleY: 2, mpp: 0.25 });
  assert.equal(doc.features.length, 1);
  const f = doc.features[0];
  assert.equal(f.geometry.type, 'Polygon');
  assert.equal(f.geometry.coordinates.length, 1, 'no holes');
  const ring: [number, number][] = f.geometry.coordinates[0];
  // Vertices on the pixel grid (scaled to level 0): every vertex a pixel corner, the outline axis-aligned.
  for (const [x, y] of ring) assert.ok(x % 2 === 0 && y % 2 === 0, `vertex ${x},${y} on the grid`);
  for (let i = 1; i < ring.length; i++) {
    const [x0, y0] = ring[i - 1]!;
    const [x1, y1] = ring[i]!;
    assert.ok(x0 === x1 || y0 === y1, 'edges follow pixel edges');
  }
  // The exact outline of the disc: its bounding box is 10 px, and shapely's area = pixels × 2².
  const xs = ring.map((p) => p[0]);
  const ys = ring.map((p) => p[1]);
  assert.equal(Math.max(...xs) - Math.min(...xs), 20);
  assert.equal(Math.max(...ys) - Math.min(...ys), 20);
  const [[valid, , area]] = shapely(path) as [[boolean, string, number]];
  assert.ok(valid);
  assert.equal(area, pixels * 4);
  assert.equal(f.properties.measurements['Area µm^2'], pixels * 0.25 * 0.25);
  assert.equal(f.properties.objectType, 'detection');
  assert.deepEqual(f.properties.classification, { name: 'nucleus', color: [200, 0, 0] });
  // The same map in one band gives the same polygon.
  const whole = await polygonsOf(mask, W, H, H, { scaleX: 2, scaleY: 2, mpp: 0.25 });
  assert.deepEqual(whole.doc.features[0].geometry, f.geometry);
});

test('classes mode: one MultiPolygon annotation per class; coordinates rounded; simplification keeps validity', async () => {
  const W = 50;
  const H = 30;
  const mask = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) mask[y * W + x] = (x >> 3) % 2 ? 1 : y > 20 ? 2 : 0;
  const scale = 1 / 3;
  const { path, doc } = await polygonsOf(mask, W, H, 4, { mode: 'classes', scaleX: scale, scaleY: scale });
  assert.deepEqual(
    doc.features.map(
      (f: { properties: { classification: { name: string } } }) => f.properties.classification.name,
    ),
    ['nucleus', 'stroma'],
  );
  for (const f of doc.features) {
    assert.equal(f.geometry.type, 'MultiPolygon');
    assert.equal(f.properties.objectType, 'annotation');
    for (const poly of f.geometry.coordinates)
      for (const ring of poly)
        for (const [x, y] of ring) {
          assert.equal(x, Math.round(x * 100) / 100);
          assert.equal(y, Math.round(y * 100) / 100);
        }
  }
  const counts = [0, 0, 0];
  for (const v of mask) counts[v]!++;
  const verdicts = shapely(path);
  assert.ok(verdicts.every((v) => v[0]));
  assert.ok(Math.abs(verdicts[0]![2] - counts[1]! * scale * scale) < 0.01 * counts[1]! * scale * scale);
  // Douglas–Peucker on a staircase (a diagonal band) removes vertices and stays valid.
  const diag = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) diag[y * W + x] = Math.abs(x - y) < 6 ? 1 : 0;
  const exact = await polygonsOf(diag, W, H, 5);
  const simple = await polygonsOf(diag, W, H, 5, { simplify: 1.5 });
  const n = (d: { features: { geometry: { coordinates: unknown[][] } }[] }) =>
    d.features[0]!.geometry.coordinates[0]!.length;
  assert.ok(n(simple.doc) < n(exact.doc) / 2, `${n(simple.doc)} vs ${n(exact.doc)} vertices`);
  assert.ok(shapely(simple.path).every((v) => v[0]));
});

test('a ring that touches itself at a corner is split into simple rings', () => {
  // A 3×3 ring of pixels without its bottom-left pixel: (0,1) and (1,2) meet only at a corner, where the outline
  // of the region would touch itself.
  //   X X X
  //   X . X
  //   . X X
  const runs = [0, 0, 3, 1, 0, 1, 1, 2, 3, 2, 1, 3];
  const { polygons, splits } = componentPolygons(runs);
  assert.equal(splits, 1);
  assert.equal(polygons.length, 1);
  // Shell + a one-pixel hole touching it at the corner (valid), not one self-touching ring.
  assert.equal(polygons[0]!.length, 2);
});

test('labelPolygons (in-memory maps) uses the same tracer: valid in shapely, class areas = pixel counts', async () => {
  const W = 40;
  const H = 33;
  const r = rng(9);
  const mask = new Uint8Array(W * H);
  for (let i = 0; i < mask.length; i++) mask[i] = r() < 0.55 ? 1 + Math.floor(r() * 2) : 0;
  const polygons = labelPolygons(mask, W, H, { 1: 'a', 2: 'b' }, { scaleX: 2, scaleY: 3 });
  const path = join(dir, 'label-polygons.geojson');
  await writeFile(path, JSON.stringify(toGeoJSON(polygons)));
  const verdicts = shapely(path);
  assert.deepEqual(
    verdicts.filter((v) => !v[0]),
    [],
  );
  const areas: Record<string, number> = { a: 0, b: 0 };
  polygons.forEach((p, i) => {
    areas[p.label] = areas[p.label]! + verdicts[i]![2];
  });
  const counts = [0, 0, 0];
  for (const v of mask) counts[v]!++;
  assert.equal(areas.a, counts[1]! * 6);
  assert.equal(areas.b, counts[2]! * 6);
  assert.equal(labelPolygons(mask, W, H, { 1: 'a' }, { minPixels: 1e9 }).length, 0);
});

test('Douglas–Peucker never makes an invalid polygon: an object it would break keeps its exact outline', async () => {
  // Blobby regions (smoothed noise): narrow necks and holes near the outline, where simplification crosses rings.
  const W = 160;
  const H = 160;
  let fallbacks = 0;
  let simplified = 0;
  for (const seed of [1, 2, 3]) {
    const r = rng(seed);
    const noise = Float32Array.from({ length: W * H }, () => r());
    const mask = new Uint8Array(W * H);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let s = 0;
        let n = 0;
        for (let dy = -3; dy <= 3; dy++) {
          for (let dx = -3; dx <= 3; dx++) {
            if (y + dy >= 0 && x + dx >= 0 && y + dy < H && x + dx < W) {
              s += noise[(y + dy) * W + x + dx]!;
              n++;
            }
          }
        }
        mask[y * W + x] = s / n > 0.5 ? 1 : 0;
      }
    }
    for (const tolerance of [1, 2, 4]) {
      const exact = await polygonsOf(mask, W, H, 16);
      const { path, doc, summary } = await polygonsOf(mask, W, H, 16, { simplify: tolerance });
      assert.deepEqual(
        shapely(path).filter((v) => !v[0]),
        [],
        `seed ${seed}, tolerance ${tolerance}`,
      );
      fallbacks += summary.simplifyFallbacks;
      const vertices = (d: { features: { geometry: { coordinates: unknown } }[] }) =>
        JSON.stringify(d.features.map((f) => f.geometry.coordinates)).length;
      if (vertices(doc) < vertices(exact.doc)) simplified++;
    }
  }
  assert.ok(fallbacks > 0, 'some objects needed their exact outline');
  assert.equal(simplified, 9, 'and the rest were simplified');
});

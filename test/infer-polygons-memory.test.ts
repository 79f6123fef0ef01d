/**
 * The polygon stream's memory is bounded by the open components, not the slide: a 16k × 16k label map (268 M
 * pixels, as bands of 512 rows generated on the fly) with ~100 k nuclei and one region spanning the whole height is
 * traced with the JS heap growing by far less than the map itself, and every object comes out.
 */
import assert from 'node:assert/strict';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PolygonStreamer } from '../src/infer/polygons.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'polygons-memory-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const N = 16384;
const BAND = 512;
const SPACING = 48;
const STRIPE = 2000;

/** Row y of the map: a stripe of class 2 (x < STRIPE) with a 20-px hole every 300 rows, discs of class 1 elsewhere. */
function fillRow(row: Uint8Array, y: number): void {
  row.fill(0);
  const inHoleRows = y % 300 >= 100 && y % 300 < 120;
  row.fill(2, 0, STRIPE);
  if (inHoleRows) row.fill(0, 900, 920);
  const cy = Math.floor(y / SPACING) * SPACING + SPACING / 2;
  const dy = y + 0.5 - cy;
  if (dy * dy > 25) return;
  const half = Math.sqrt(25 - dy * dy);
  for (let cx = STRIPE + SPACING / 2; cx + SPACING / 2 <= N; cx += SPACING) {
    for (let x = Math.ceil(cx - half - 0.5); x + 0.5 <= cx + half; x++) row[x] = 1;
  }
}

test('a 16k × 16k map: heap bounded by the open components, every object traced', async () => {
  const path = join(dir, 'big.geojson');
  const s = new PolygonStreamer({
    path,
    mode: 'objects',
    width: N,
    classes: { 1: { name: 'nucleus', color: [200, 0, 0] }, 2: { name: 'stroma', color: [0, 200, 0] } },
  });
  const band = new Uint8Array(N * BAND);
  gc();
  const base = process.memoryUsage().heapUsed;
  let peak = 0;
  for (let y0 = 0; y0 < N; y0 += BAND) {
    for (let r = 0; r < BAND; r++) fillRow(band.subarray(r * N, (r + 1) * N), y0 + r);
    await s.addBand(band, BAND);
    gc();
    peak = Math.max(peak, process.memoryUsage().heapUsed - base);
  }
  const summary = await s.finish();
  const nuclei = Math.floor((N - STRIPE) / SPACING) * Math.floor(N / SPACING);
  assert.equal(summary.objects, nuclei + 1);
  assert.equal(summary.features, nuclei + 1);
  // The label map is 256 MiB (band buffer outside the JS heap); the heap holds open components and write buffers.
  assert.ok(peak < 16 * 2 ** 20, `heap grew by ${(peak / 2 ** 20).toFixed(1)} MiB`);
  // The stripe, still open at the last row, is the last feature: one polygon with a hole per 300 rows.
  const size = (await stat(path)).size;
  const fh = await open(path);
  const tail = Buffer.alloc(Math.min(size, 2 ** 20));
  await fh.read(tail, 0, tail.length, size - tail.length);
  await fh.close();
  const lines = tail.toString('utf8').trimEnd().split('\n');
  const last = JSON.parse(lines[lines.length - 2]!);
  assert.equal(last.properties.classification.name, 'stroma');
  const stripeHoles = last.geometry.coordinates.length - 1;
  assert.equal(stripeHoles, Math.ceil((N - 100) / 300));
  assert.ok(size > nuclei * 100);
});

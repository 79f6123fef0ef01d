/**
 * The fused blend of the whole-slide loop (upsampling, softmax and window-weighted accumulation in one pass,
 * `StripeAccumulator.addLogits`) against the two-step path it replaces (`upsampledSoftmax` into a tile buffer, then
 * `add`): every accumulator value bit for bit, for tiles cut by the stripe's borders and by the grid's bottom edge,
 * any batch item, logits large enough for the softmax to saturate, and 2 or 3 classes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blendWindow } from '../src/core/sliding.ts';
import { BandPool, StripeAccumulator } from '../src/infer/band-accumulator.ts';
import { exp, upsampledSoftmax } from '../src/infer/tile-probs.ts';

function randomLogits(n: number, seed: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < a.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = ((s >>> 8) / 2 ** 24 - 0.5) * scale;
  }
  return a;
}

for (const classes of [2, 3]) {
  test(`fused upsample + softmax + blend equals the two-step path bit for bit (${classes} classes)`, () => {
    const tile = 64;
    const overlap = 16;
    const chunkSize = 48;
    // Grid 150 × 110: the last tile row hangs over the bottom edge; the stripe [48, 144) cuts tiles on both sides.
    const g = { width: 150, height: 110, chunkSize, tile, classes, window: blendWindow(tile, overlap) };
    const stripe = { x0: 48, x1: 144, c0: 1, c1: 3, tiles: [] };
    const dims = { classes, height: tile / 4, width: tile / 4 };
    const n = 3;
    const logits = randomLogits(n * classes * dims.height * dims.width, 7 + classes, 40);
    const fused = new StripeAccumulator(g, stripe, new BandPool(classes));
    const twoStep = new StripeAccumulator(g, stripe, new BandPool(classes));
    const origins = [
      { x: 0, y: 0 },
      { x: 48, y: 0 },
      { x: 96, y: 48 },
      { x: 120, y: 80 },
      { x: 30, y: 70 },
    ];
    let probs: Float32Array | undefined;
    origins.forEach((t, k) => {
      const b = k % n;
      fused.addLogits(t, logits, dims, b);
      probs = upsampledSoftmax(logits, dims, b, tile, tile, probs);
      twoStep.add(t, probs);
    });
    let compared = 0;
    for (let gy = 0; gy < g.height; gy++) {
      const a = fused.heldRow(gy);
      const e = twoStep.heldRow(gy);
      assert.equal(a === undefined, e === undefined, `row ${gy} held by one path only`);
      if (!a || !e) continue;
      assert.deepEqual(new Uint32Array(a.acc.buffer), new Uint32Array(e.acc.buffer), `row ${gy}: sums`);
      assert.deepEqual(new Uint32Array(a.wsum.buffer), new Uint32Array(e.wsum.buffer), `row ${gy}: weights`);
      compared += e.wsum.filter((x) => x !== 0).length;
    }
    // Every stripe pixel the tiles reach: columns 48..143 of rows 0..109 minus the corner no tile covers.
    assert.ok(compared > 80 * 100, `only ${compared} pixels were blended`);
  });
}

test('fused blend: a logits batch of the wrong class count is an error', () => {
  const g = { width: 64, height: 64, chunkSize: 64, tile: 64, classes: 2, window: blendWindow(64, 0) };
  const acc = new StripeAccumulator(g, { x0: 0, x1: 64, c0: 0, c1: 1, tiles: [] }, new BandPool(2));
  assert.throws(
    () =>
      acc.addLogits({ x: 0, y: 0 }, new Float32Array(3 * 16 * 16), { classes: 3, height: 16, width: 16 }, 0),
    /3 logit channels for 2 classes/,
  );
});

test("the blend's exp equals Math.exp bit for bit over the range the softmax meets, and beyond", () => {
  // Every branch of the algorithm: |x| < 2^-28, the unreduced band up to ln2/2, k = ±1, general k, the edges of
  // the normal range, and the arguments handed to Math.exp itself (|x| ≥ 700, NaN, ±Infinity).
  const edges = [
    0,
    -0,
    1,
    -1,
    2 ** -28,
    -(2 ** -28),
    0.34657359027997264,
    0.3465735902799727,
    1.0397207708399179,
  ];
  const special = [700, -700, 709.7, -745.2, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
  const xs: number[] = [...edges, ...edges.map((x) => -x), ...special];
  let s = 99;
  const rnd = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
  for (let i = 0; i < 400_000; i++) {
    const r = rnd() - 0.5;
    xs.push(r * 2 ** -(rnd() * 40), r * 2.2, r * 120, r * 1500);
  }
  let mismatches = 0;
  for (const x of xs) if (!Object.is(exp(x), Math.exp(x))) mismatches++;
  assert.equal(mismatches, 0, `${mismatches} of ${xs.length} arguments differ from Math.exp`);
});

test('rows made final between tiles (as the tile loop flushes) give the chunks of one flush at the end', () => {
  const tile = 64;
  const chunkSize = 48;
  const classes = 2;
  const g = { width: 150, height: 110, chunkSize, tile, classes, window: blendWindow(tile, 16) };
  const stripe = { x0: 48, x1: 144, c0: 1, c1: 3, tiles: [] };
  const dims = { classes, height: tile / 4, width: tile / 4 };
  // In the loop's order (by row of tiles), overlapping, the last row hanging over the grid's bottom.
  const origins = [0, 48, 96].flatMap((y) => [0, 48, 96].map((x) => ({ x, y })));
  const logits = randomLogits(origins.length * classes * dims.height * dims.width, 11, 12);
  type Chunk = { cx: number; cy: number; labels: number[] };
  const run = (flushEarly: boolean): Chunk[] => {
    const chunks: Chunk[] = [];
    const sink = (cx: number, cy: number, labels: Uint8Array) => chunks.push({ cx, cy, labels: [...labels] });
    const acc = new StripeAccumulator(g, stripe, new BandPool(classes));
    origins.forEach((t, k) => {
      acc.addLogits(t, logits, dims, k);
      const next = origins[k + 1];
      if (flushEarly && next) acc.flush(next.y, () => false, sink);
    });
    acc.flush(Number.POSITIVE_INFINITY, () => false, sink);
    return chunks;
  };
  const early = run(true);
  const atEnd = run(false);
  assert.equal(atEnd.length, 3 * 2, 'every chunk of the stripe (3 rows × 2 columns)');
  assert.deepEqual(early, atEnd);
  const all = atEnd.flatMap((c) => c.labels);
  assert.ok(all.includes(1) && all.includes(2), 'both classes appear');
});

/**
 * The per-tile pixel loops of the whole-slide pipeline against their per-byte definitions: normalisation into the
 * model's input (`fillPixels`: word reads where aligned, white outside the image, compositing over white where
 * transparent) and the two-class labels of a row (`labelsInto` against `argmaxAt`, ties and unreached pixels).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { argmaxAt } from '../src/core/sliding.ts';
import { labelsInto } from '../src/infer/band-accumulator.ts';
import { fillPixels } from '../src/infer/tile-batches.ts';

/** The definition: one pixel at a time, bytes read one by one. */
function fillPixelsReference(
  img: { data: Uint8Array; width: number; height: number },
  tile: number,
  dst: Float32Array,
  item: number,
  scale: number[],
  offset: number[],
): void {
  const plane = tile * tile;
  for (let y = 0; y < tile; y++) {
    for (let x = 0; x < tile; x++) {
      let rgb = [255, 255, 255];
      if (x < img.width && y < img.height) {
        const p = (y * img.width + x) * 4;
        const a = img.data[p + 3]!;
        rgb = [0, 1, 2].map((c) =>
          a === 255 ? img.data[p + c]! : Math.round((img.data[p + c]! * a + 255 * (255 - a)) / 255),
        );
      }
      for (let c = 0; c < 3; c++)
        dst[item * 3 * plane + c * plane + y * tile + x] = rgb[c]! * scale[c]! + offset[c]!;
    }
  }
}

function randomImage(width: number, height: number, seed: number, byteOffset: number) {
  const buffer = new ArrayBuffer(byteOffset + width * height * 4);
  const data = new Uint8Array(buffer, byteOffset, width * height * 4);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  // Most pixels opaque (the word path), some transparent or partly so (compositing).
  for (let p = 0; p < width * height; p++) {
    const k = p % 7;
    data[p * 4 + 3] = k === 0 ? 0 : k === 1 ? (p * 37) % 255 : 255;
  }
  return { data, width, height };
}

for (const [name, width, height, byteOffset] of [
  ['whole tile, aligned', 48, 48, 0],
  ['smaller than the tile, aligned', 37, 29, 8],
  ['smaller than the tile, unaligned bytes', 40, 45, 3],
] as const) {
  test(`fillPixels equals the per-byte definition (${name})`, () => {
    const tile = 48;
    const scale = [1 / 255 / 0.229, 1 / 255 / 0.224, 1 / 255 / 0.225];
    const offset = [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225];
    const img = randomImage(width, height, width * 31 + height, byteOffset);
    const got = new Float32Array(2 * 3 * tile * tile).fill(Number.NaN);
    const want = new Float32Array(2 * 3 * tile * tile).fill(Number.NaN);
    fillPixels(img, tile, got, 1, {
      scale: scale as [number, number, number],
      offset: offset as [number, number, number],
    });
    fillPixelsReference(img, tile, want, 1, scale, offset);
    assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(want.buffer));
  });
}

test('labelsInto: two classes as argmaxAt (ties to the first, 0 where no tile reached)', () => {
  const sw = 40;
  const h = 6;
  const acc = new Float32Array(sw * h * 2);
  const wsum = new Float32Array(sw * h);
  let s = 5;
  for (let i = 0; i < sw * h; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const k = s >>> 29;
    acc[2 * i] = k === 0 ? 0.5 : (s & 0xffff) / 65536;
    acc[2 * i + 1] = k === 0 ? 0.5 : k === 1 ? Number.NaN : ((s >>> 8) & 0xffff) / 65536;
    wsum[i] = k === 2 ? 0 : 1;
  }
  // Columns 7..31 of each accumulated row, as flush() labels a row into its band.
  const labels = new Uint8Array(25 * h);
  for (let y = 0; y < h; y++) labelsInto(acc, wsum, y * sw + 7, 25, 2, labels, y * 25);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < 25; x++) {
      const i = y * sw + 7 + x;
      const want = wsum[i] === 0 ? 0 : argmaxAt(acc, i, 2) + 1;
      assert.equal(labels[y * 25 + x], want, `pixel (${x}, ${y})`);
    }
  }
  assert.ok(labels.includes(0) && labels.includes(1) && labels.includes(2));
});

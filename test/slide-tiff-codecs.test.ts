/** Small crafted TIFFs for layouts the fixtures lack: deflate + horizontal predictor, separate planes, 16-bit RGB. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { openSlide } from '../src/slide/index.ts';
import { craftTiff, type Entry } from './slide-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'slideseg-codecs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const W = 16;
const H = 16;
/** The expected picture: a gradient with some texture, in 8-bit RGB. */
const rgb = (x: number, y: number) => [(x * 16 + y) & 255, (y * 13 + 7) & 255, (x * y * 3) & 255];

/** Appends `data` after a TIFF whose tag values point at byte DATA_AT. */
const DATA_AT = 4096;
function withData(entries: Entry[], blobs: Uint8Array[]): Uint8Array {
  const head = craftTiff(entries);
  const total = DATA_AT + blobs.reduce((n, b) => n + b.length, 0);
  const out = new Uint8Array(total);
  out.set(head);
  let at = DATA_AT;
  for (const b of blobs) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

async function readAll(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  const slide = await openSlide(path);
  const img = await slide.readRegion({ x: 0, y: 0, level: 0, width: W, height: H });
  await slide.close();
  return img.data;
}

function assertPicture(data: Uint8Array): void {
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = (y * W + x) * 4;
      assert.deepEqual([...data.subarray(i, i + 4)], [...rgb(x, y), 255], `pixel ${x},${y}`);
    }
  }
}

test('deflate with horizontal differencing (predictor 2), tiled', async () => {
  const raw = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = W - 1; x >= 0; x--) {
      for (let k = 0; k < 3; k++) {
        const v = rgb(x, y)[k];
        raw[(y * W + x) * 3 + k] = x === 0 ? v : (v - rgb(x - 1, y)[k]) & 255;
      }
    }
  }
  const z = deflateSync(raw);
  const entries: Entry[] = [
    [256, 4, [W]],
    [257, 4, [H]],
    [258, 3, [8, 8, 8]],
    [259, 3, [8]],
    [262, 3, [2]],
    [277, 3, [3]],
    [317, 3, [2]],
    [322, 3, [W]],
    [323, 3, [H]],
    [324, 4, [DATA_AT]],
    [325, 4, [z.length]],
  ];
  assertPicture(await readAll(withData(entries, [z]), 'predictor.tif'));
});

test('separate colour planes (PlanarConfiguration 2), stripped, uncompressed', async () => {
  const planes = [0, 1, 2].map((k) => {
    const p = new Uint8Array(W * H);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) p[y * W + x] = rgb(x, y)[k];
    return p;
  });
  const entries: Entry[] = [
    [256, 4, [W]],
    [257, 4, [H]],
    [258, 3, [8, 8, 8]],
    [259, 3, [1]],
    [262, 3, [2]],
    [277, 3, [3]],
    [273, 4, [DATA_AT, DATA_AT + W * H, DATA_AT + 2 * W * H]],
    [278, 4, [H]],
    [279, 4, [W * H, W * H, W * H]],
    [284, 3, [2]],
  ];
  assertPicture(await readAll(withData(entries, planes), 'planar.tif'));
});

test('16-bit RGB is scaled to 8 bits', async () => {
  const raw = new Uint8Array(W * H * 6);
  const view = new DataView(raw.buffer);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let k = 0; k < 3; k++) view.setUint16(((y * W + x) * 3 + k) * 2, rgb(x, y)[k] * 257, true);
    }
  }
  const entries: Entry[] = [
    [256, 4, [W]],
    [257, 4, [H]],
    [258, 3, [16, 16, 16]],
    [259, 3, [1]],
    [262, 3, [2]],
    [277, 3, [3]],
    [273, 4, [DATA_AT]],
    [278, 4, [H]],
    [279, 4, [raw.length]],
  ];
  assertPicture(await readAll(withData(entries, [raw]), 'rgb16.tif'));
});

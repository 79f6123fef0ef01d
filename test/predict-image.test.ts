/** Image reading and preprocessing for `slideseg predict`: fixture parity and explicit alpha/16-bit/grey handling. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import {
  ImageTooLargeError,
  preprocessImage,
  readImagePreprocessing,
  readImageRGB,
} from '../src/image/index.ts';
import { readNpy } from '../src/io/npy.ts';
import { fixture, needs } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'slideseg-image-'));

/** A minimal PNG encoder, independent of libvips, for 16-bit and alpha test images. */
function encodePng(
  width: number,
  height: number,
  colourType: 0 | 2 | 4 | 6,
  bitDepth: 8 | 16,
  samples: number[],
) {
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colourType];
  const bytesPer = bitDepth / 8;
  const raw = Buffer.alloc(height * (1 + width * channels * bytesPer));
  let o = 0;
  for (let y = 0; y < height; y++) {
    raw[o++] = 0; // filter: none
    for (let i = 0; i < width * channels; i++) {
      const v = samples[y * width * channels + i]!;
      if (bitDepth === 16) raw.writeUInt16BE(v, o);
      else raw[o] = v;
      o += bytesPer;
    }
  }
  const chunk = (type: string, body: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const typed = Buffer.concat([Buffer.from(type, 'ascii'), body]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typed));
    return Buffer.concat([len, typed, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colourType;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

function write(name: string, bytes: Uint8Array | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

for (const model of ['segformer-tiny', 'segformer-tiny-odd', 'segformer-b0']) {
  test(`${model}: PNGs decode to image_uint8_nhwc and preprocess to pixel_values exactly`, {
    skip: needs(['segformer', model]),
  }, async () => {
    const u8 = await readNpy(fixture('segformer', model, 'image_uint8_nhwc.npy'));
    const pv = await readNpy(fixture('segformer', model, 'pixel_values.npy'));
    const cfg = await readImagePreprocessing(fixture('segformer', model, 'preprocessor_config.json'));
    const [N, C, H, W] = pv.shape as [number, number, number, number];
    for (let n = 0; n < N; n++) {
      const img = await readImageRGB(fixture('segformer', model, `image${n}.png`));
      assert.deepEqual([img.height, img.width, img.notes], [H, W, []]);
      assert.deepEqual(img.data, (u8.data as Uint8Array).subarray(n * H * W * 3, (n + 1) * H * W * 3));
      const x = await preprocessImage(img, cfg);
      assert.deepEqual(x.shape, [1, H, W, 3]);
      let worst = 0;
      for (let y = 0; y < H; y++)
        for (let xx = 0; xx < W; xx++)
          for (let c = 0; c < 3; c++) {
            const want = (pv.data as Float32Array)[((n * C + c) * H + y) * W + xx]!;
            worst = Math.max(worst, Math.abs(x.data[(y * W + xx) * 3 + c]! - want));
          }
      assert.equal(worst, 0, `max |diff| ${worst}`);
    }
  });
}

test('grey PNG is expanded to RGB', async () => {
  const img = await readImageRGB(write('grey.png', encodePng(2, 1, 0, 8, [7, 200])));
  assert.deepEqual([...img.data], [7, 7, 7, 200, 200, 200]);
});

test('opaque alpha is dropped silently; translucent alpha is composited on white or refused', async () => {
  const opaque = await readImageRGB(write('opaque.png', encodePng(1, 1, 6, 8, [10, 20, 30, 255])));
  assert.deepEqual([[...opaque.data], opaque.notes], [[10, 20, 30], []]);
  const path = write('alpha.png', encodePng(2, 1, 6, 8, [10, 20, 30, 255, 100, 0, 200, 51]));
  const img = await readImageRGB(path);
  // 100·0.2 + 255·0.8 = 224; 0·0.2 + 204 = 204; 200·0.2 + 204 = 244.
  assert.deepEqual([...img.data], [10, 20, 30, 224, 204, 244]);
  assert.match(img.notes.join(), /composited on white/);
  await assert.rejects(readImageRGB(path, { alpha: 'refuse' }), /alpha\.png: image has transparent pixels/);
  const greyAlpha = await readImageRGB(write('ga.png', encodePng(1, 1, 4, 8, [0, 0])));
  assert.deepEqual([...greyAlpha.data], [255, 255, 255]);
});

test('16-bit PNG is scaled by 1/257 or refused', async () => {
  const path = write('deep.png', encodePng(2, 1, 2, 16, [0, 257 * 100, 65535, 128, 300, 65000]));
  const img = await readImageRGB(path);
  // round(128/257) = 0, round(300/257) = 1, round(65000/257) = 253.
  assert.deepEqual([...img.data], [0, 100, 255, 0, 1, 253]);
  assert.match(img.notes.join(), /16-bit/);
  await assert.rejects(readImageRGB(path, { sixteenBit: 'refuse' }), /deep\.png: 16-bit image refused/);
});

test('JPEG and TIFF are read as RGB', async () => {
  const rgb = Buffer.alloc(16 * 8 * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37) % 256;
  const raw = { raw: { width: 16, height: 8, channels: 3 as const } };
  const tif = await readImageRGB(
    write('x.tif', await sharp(rgb, raw).tiff({ compression: 'lzw' }).toBuffer()),
  );
  assert.deepEqual([tif.format, tif.width, tif.height], ['tiff', 16, 8]);
  assert.deepEqual(Buffer.from(tif.data), rgb);
  const flat = Buffer.alloc(16 * 8 * 3, 90);
  const jpg = await readImageRGB(write('x.jpg', await sharp(flat, raw).jpeg({ quality: 95 }).toBuffer()));
  assert.equal(jpg.format, 'jpeg');
  assert.ok(
    jpg.data.every((v) => Math.abs(v - 90) <= 2),
    'JPEG of flat grey 90 decodes within 2',
  );
});

test('missing, non-image and truncated files fail with the file name', async () => {
  await assert.rejects(readImageRGB(join(dir, 'nope.png')), /nope\.png: cannot read image: no such file/);
  await assert.rejects(readImageRGB(dir), /cannot read image: is a directory/);
  await assert.rejects(
    readImageRGB(write('text.png', Buffer.from('hello'))),
    /text\.png: not a readable image/,
  );
  const good = encodePng(
    64,
    64,
    2,
    8,
    Array.from({ length: 64 * 64 * 3 }, (_, i) => i % 251),
  );
  const cut = write('cut.png', good.subarray(0, good.length - 40));
  await assert.rejects(readImageRGB(cut), /cut\.png: (cannot decode|not a readable)/);
});

test('16-bit grey with alpha is scaled, expanded and composited', async () => {
  const img = await readImageRGB(write('deep-ga.png', encodePng(2, 1, 4, 16, [257 * 40, 65535, 65535, 0])));
  assert.deepEqual([...img.data], [40, 40, 40, 255, 255, 255]);
  assert.equal(img.notes.length, 2);
});

test('maxPixels refuses an image before decoding it', async () => {
  const path = write('big.png', encodePng(30, 20, 0, 8, new Array(600).fill(9)));
  await assert.rejects(
    readImageRGB(path, { maxPixels: 599 }),
    (e: Error) =>
      e instanceof ImageTooLargeError && /big\.png: 30x20 image has more than the 599 pixels/.test(e.message),
  );
  assert.equal((await readImageRGB(path, { maxPixels: 600 })).width, 30);
});

/**
 * Hostile OME-Zarr stores: reads stay inside the store folder (no symlink escapes, no '..', no absolute paths),
 * metadata is validated before use, and chunks that do not decode to their declared size are errors naming the
 * chunk, never pixels.
 */
import assert from 'node:assert/strict';
import { chmod, cp, mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { openSlide, SlideError } from '../src/slide/index.ts';
import { fixture, needs } from './fixtures.ts';
import { expectedRgba, writeTinyZarr } from './fuzz/tiny-zarr.ts';

const TMP = await mkdtemp(join(tmpdir(), 'slideseg-hostile-zarr-'));
after(() => rm(TMP, { recursive: true, force: true }));
let serial = 0;

/** A fresh tiny store (3×64×64 uint8, 32² chunks, uncompressed unless asked) and its chunk keys. */
async function store(opts: Parameters<typeof writeTinyZarr>[1] = {}) {
  const dir = join(TMP, `s${serial++}.zarr`);
  const keys = await writeTinyZarr(dir, opts);
  return { dir, keys };
}

async function readAll(path: string, options: Parameters<typeof openSlide>[1] = {}): Promise<Uint8Array> {
  const slide = await openSlide(path, options);
  try {
    const { width, height } = slide.levels[0];
    return (await slide.readRegion({ x: 0, y: 0, level: 0, width, height })).data;
  } finally {
    await slide.close();
  }
}

/** Fails with a one-line SlideError naming the store and matching `reason`. */
async function failsClearly(path: string, reason: RegExp, work: () => Promise<unknown>): Promise<void> {
  await assert.rejects(work, (err: unknown) => {
    assert.ok(err instanceof SlideError, `expected a SlideError, got ${err}`);
    assert.ok(err.message.startsWith(path), `names the store: ${err.message}`);
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    assert.match(err.message, reason);
    return true;
  });
}

describe('OME-Zarr stores are confined to their folder', () => {
  test('a chunk that is a symlink to a file outside the store is refused', async () => {
    const secret = join(TMP, `secret-${serial++}.bin`);
    // Same size as a chunk, so that without the check it would read as pixels.
    const secretBytes = new Uint8Array(3 * 32 * 32).map((_, i) => (i * 13) & 255);
    await writeFile(secret, secretBytes);
    const { dir, keys } = await store();
    await unlink(join(dir, keys[0]));
    await symlink(secret, join(dir, keys[0]));
    await failsClearly(dir, /outside the store folder/, () => readAll(dir));

    // Trusted local data may opt in: then the linked bytes are the chunk.
    const pixels = await readAll(dir, { allowSymlinksOutside: true });
    assert.equal(pixels[0], secretBytes[0]);
    assert.equal(pixels[4], secretBytes[1]);
  });

  test('a chunk folder that is a symlink out of the store is refused', async () => {
    const outside = await store();
    const { dir } = await store();
    await rm(join(dir, '0', '0'), { recursive: true });
    await symlink(join(outside.dir, '0', '0'), join(dir, '0', '0'));
    await failsClearly(dir, /outside the store folder/, () => readAll(dir));
  });

  test('symlinks inside the store are followed', async () => {
    const { dir, keys } = await store({ value: () => 7 });
    const target = join(dir, 'elsewhere.bin');
    await writeFile(target, await readFile(join(dir, keys[0])));
    await unlink(join(dir, keys[0]));
    await symlink(target, join(dir, keys[0]));
    const pixels = await readAll(dir);
    assert.deepEqual(
      pixels,
      expectedRgba(0, 0, 64, 64, () => 7),
    );
  });

  for (const [name, path] of [
    ['a ".." dataset path', '../other.zarr/0'],
    ['an absolute dataset path', '/etc'],
    ['a dataset path with a backslash', '..\\..\\etc'],
  ]) {
    test(`${name} is refused before anything is read`, async () => {
      const { dir } = await store();
      const attrs = JSON.parse(await readFile(join(dir, '.zattrs'), 'utf8'));
      attrs.multiscales[0].datasets[0].path = path;
      await writeFile(join(dir, '.zattrs'), JSON.stringify(attrs));
      await failsClearly(dir, /must lie inside the store/, () => readAll(dir));
    });
  }

  test('the store folder itself may be reached through a symlink', async () => {
    const { dir } = await store();
    const link = join(TMP, `link-${serial++}.zarr`);
    await symlink(dir, link);
    assert.deepEqual(await readAll(link), expectedRgba(0, 0, 64, 64));
  });
});

describe('Zarr metadata is validated before use', () => {
  const v3Grid = (chunks: number[]) => ({
    chunk_grid: { name: 'regular', configuration: { chunk_shape: chunks } },
  });
  const cases: [string, Parameters<typeof writeTinyZarr>[1], RegExp][] = [
    [
      'a zero chunk size',
      { arrayMeta: { chunks: [3, 0, 256] }, noChunks: true },
      /chunk shape \[3,0,256\] holds 0/,
    ],
    ['a negative chunk size', { arrayMeta: { chunks: [3, -32, 32] }, noChunks: true }, /holds -32/],
    ['a fractional chunk size', { arrayMeta: { chunks: [3, 1.5, 32] }, noChunks: true }, /holds 1\.5/],
    [
      'a chunk shape of the wrong rank',
      { arrayMeta: { chunks: [32, 32] }, noChunks: true },
      /2 entries for 3 dimensions/,
    ],
    [
      'a shape beyond 2^53',
      { arrayMeta: { shape: [3, 2 ** 54, 64] }, noChunks: true },
      /each must be an integer/,
    ],
    ['a string shape', { arrayMeta: { shape: '3,64,64' }, noChunks: true }, /shape must be a non-empty list/],
    ['a huge chunk', { arrayMeta: { chunks: [3, 65536, 65536] }, noChunks: true }, /MiB each \(limit/],
    ['v3 codecs []', { format: 3, arrayMeta: { codecs: [] } }, /exactly one array-to-bytes codec/],
    [
      'v3 zero chunk size',
      { format: 3, arrayMeta: v3Grid([3, 0, 32]), noChunks: true },
      /chunk shape \[3,0,32\] holds 0/,
    ],
    [
      'v3 irregular chunk grid',
      { format: 3, arrayMeta: { chunk_grid: { name: 'rectilinear' } }, noChunks: true },
      /chunk_grid must be "regular"/,
    ],
  ];
  for (const [name, opts, reason] of cases) {
    test(name, { timeout: 30_000 }, async () => {
      const { dir } = await store(opts);
      await failsClearly(dir, reason, () => readAll(dir));
    });
  }

  test('a float32 array of 3×10^6×10^6 opens: display statistics come from a bounded sample', {
    timeout: 60_000,
  }, async () => {
    const { dir } = await store({
      format: 3,
      shape: [3, 1_000_000, 1_000_000],
      chunks: [1, 1024, 1024],
      arrayMeta: { data_type: 'float32' },
      noChunks: true,
    });
    const slide = await openSlide(dir);
    try {
      assert.equal(slide.levels[0].width, 1_000_000);
      const region = await slide.readRegion({ x: 500_000, y: 500_000, level: 0, width: 16, height: 16 });
      assert.equal(region.data[3], 255);
    } finally {
      await slide.close();
    }
  });

  test('1-pixel chunks: a large read is refused with the reason, a small one works', {
    timeout: 30_000,
  }, async () => {
    const { dir } = await store({ shape: [3, 512, 512], chunks: [3, 1, 1], noChunks: true });
    const slide = await openSlide(dir);
    try {
      await assert.rejects(
        slide.readRegion({ x: 0, y: 0, level: 0, width: 256, height: 256 }),
        /needs 65536 chunks of 1x1 pixels: the chunks are too small/,
      );
      const small = await slide.readRegion({ x: 0, y: 0, level: 0, width: 16, height: 16 });
      assert.equal(small.data.length, 16 * 16 * 4);
    } finally {
      await slide.close();
    }
  });
});

describe('chunks must decode to their declared size', () => {
  const cases: [string, Parameters<typeof writeTinyZarr>[1], (bytes: Uint8Array) => Uint8Array, RegExp][] = [
    [
      'compressor null over zlib bytes',
      {},
      (b) => deflateSync(b),
      /chunk 0\/0\/0\/0: \d+ bytes where an uncompressed chunk holds 3072/,
    ],
    [
      'a zlib chunk of too few bytes',
      { compressor: 'zlib' },
      () => deflateSync(new Uint8Array(100)),
      /decodes to 100 values where the chunk shape 3x32x32 holds 3072/,
    ],
    [
      'a truncated zlib chunk',
      { compressor: 'zlib' },
      (b) => b.subarray(0, b.length >> 1),
      /Failed to decode deflate/,
    ],
    ['a garbage zlib chunk', { compressor: 'zlib' }, (b) => b.map(() => 7), /Failed to decode deflate/],
    [
      'a short raw v3 chunk',
      { format: 3 },
      (b) => b.subarray(0, 100),
      /chunk 0\/c\/0\/0\/0: 100 bytes where an uncompressed chunk holds 3072/,
    ],
    [
      'a long raw chunk',
      {},
      (b) => new Uint8Array(b.length * 2),
      /6144 bytes where an uncompressed chunk holds 3072/,
    ],
    [
      'a uint16 chunk one byte too long (it would read as the right number of values)',
      // One chunk only: the tiny store's other chunks are written as uint8, and which bad chunk a concurrent
      // read reports first is a race.
      { shape: [3, 32, 32], arrayMeta: { dtype: '<u2' } },
      () => new Uint8Array(6145),
      /6145 bytes where an uncompressed chunk holds 6144/,
    ],
  ];
  for (const [name, opts, mutate, reason] of cases) {
    test(name, async () => {
      const { dir, keys } = await store(opts);
      const path = join(dir, keys[0]);
      await writeFile(path, mutate(new Uint8Array(await readFile(path))));
      await failsClearly(dir, new RegExp(`chunk 0,0,0 could not be read: .*${reason.source}`), () =>
        readAll(dir),
      );
    });
  }
});

describe('Blosc frames are checked against their own sizes', () => {
  const BLOBS = ['zarr', 'blobs-v04.ome.zarr'];
  const mutations: [string, (b: Uint8Array) => Uint8Array, RegExp][] = [
    [
      'truncated',
      (b) => b.subarray(0, 105),
      /Blosc frame says \d+ bytes but the chunk has 105 \(truncated or corrupt\)/,
    ],
    [
      'with trailing bytes',
      (b) => Uint8Array.from([...b, 1, 2, 3]),
      /Blosc frame says \d+ bytes but the chunk has \d+/,
    ],
    [
      'expanding to another size',
      (b) => {
        const out = b.slice();
        new DataView(out.buffer).setUint32(4, 8 * 3 * 12 * 12 + 8, true);
        return out;
      },
      /Blosc frame expands to 3464 bytes but a chunk holds 3456/,
    ],
    ['too short for a header', (b) => b.subarray(0, 9), /9 bytes are too few for a Blosc frame/],
  ];
  for (const [name, mutate, reason] of mutations) {
    test(`a Blosc chunk ${name} is an error naming the chunk`, { skip: needs(BLOBS) }, async () => {
      const dir = join(TMP, `blobs-${serial++}.zarr`);
      await cp(fixture(...BLOBS), dir, { recursive: true });
      await chmod(join(dir, '0', '0', '0'), 0o755);
      const chunk = join(dir, '0', '0', '0', '0');
      const bytes = new Uint8Array(await readFile(chunk));
      await rm(chunk);
      await writeFile(chunk, mutate(bytes));
      await failsClearly(
        dir,
        new RegExp(`chunk 0,0,0 could not be read: chunk 0/0/0/0: ${reason.source}`),
        () => readAll(dir),
      );
    });
  }
});

test('a multiscales list of 100000 datasets is refused before any array is opened', async () => {
  const { dir } = await store();
  const attrs = JSON.parse(await readFile(join(dir, '.zattrs'), 'utf8'));
  const one = attrs.multiscales[0].datasets[0];
  attrs.multiscales[0].datasets = Array.from({ length: 100_000 }, () => one);
  await writeFile(join(dir, '.zattrs'), JSON.stringify(attrs));
  await failsClearly(dir, /lists 100000 datasets \(at most 64 levels\)/, () => readAll(dir));
});

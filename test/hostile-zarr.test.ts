/**
 * Hostile OME-Zarr stores: reads stay inside the store folder (no symlink escapes, no '..', no absolute paths),
 * metadata is validated before use, and chunks that do not decode to their declared size are errors naming the
 * chunk, never pixels.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { openSlide, SlideError } from '../src/slide/index.ts';
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

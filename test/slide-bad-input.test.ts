/** Corrupt, hostile or unsupported slides fail with one clear error naming the file; nothing hangs or allocates wildly. */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { openSlide, SlideError } from '../src/slide/index.ts';
import { fixture } from './fixtures.ts';
import { craftTiff, type Entry } from './slide-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'slideseg-bad-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function tiledRgb(
  width: number,
  height: number,
  tile: number,
  offsets: number[],
  counts: number[],
  compression = 1,
): Entry[] {
  return [
    [256, 4, [width]],
    [257, 4, [height]],
    [258, 3, [8, 8, 8]],
    [259, 3, [compression]],
    [262, 3, [2]],
    [277, 3, [3]],
    [322, 3, [tile]],
    [323, 3, [tile]],
    [324, 4, offsets],
    [325, 4, counts],
  ];
}

function write(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** Runs `fn` and checks it fails with a SlideError naming `path` and matching `reason`. */
async function failsClearly(path: string, reason: RegExp, fn: () => Promise<unknown>): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof SlideError, `expected a SlideError, got ${err}`);
    assert.ok(err.message.includes(path), `message names the file: ${err.message}`);
    assert.match(err.message, reason);
    assert.ok(!err.message.includes('\n'), 'one line');
    return true;
  });
}

/** Opens and reads the first level whole (a small region for big levels): the error may come at either step. */
async function openAndRead(path: string): Promise<void> {
  const s = await openSlide(path);
  try {
    const l = s.levels[0];
    await s.readRegion({
      x: 0,
      y: 0,
      level: 0,
      width: Math.min(l.width, 512),
      height: Math.min(l.height, 512),
    });
  } finally {
    await s.close();
  }
}

describe('bad slides', () => {
  test('broken.svs', async () => {
    const path = fixture('slides', 'broken.svs');
    await failsClearly(path, /unrecognised slide format/, () => openSlide(path));
  });

  test('missing file and empty file', async () => {
    const missing = join(dir, 'nope.svs');
    await failsClearly(missing, /no such file/, () => openSlide(missing));
    const empty = write('empty.svs', new Uint8Array(0));
    await failsClearly(empty, /empty file/, () => openSlide(empty));
  });

  test('truncated SVS', async () => {
    const full = readFileSync(fixture('slides', 'cmu-1-small-region.svs'));
    for (const fraction of [0.5, 0.9]) {
      const path = write(`truncated-${fraction}.svs`, full.subarray(0, Math.floor(full.length * fraction)));
      await failsClearly(path, /beyond the end of the file|truncated/, () => openAndRead(path));
    }
  });

  test('truncated header', async () => {
    const path = join(dir, 'header.svs');
    copyFileSync(fixture('slides', 'cmu-1-small-region.svs'), path);
    writeFileSync(path, readFileSync(path).subarray(0, 6));
    await failsClearly(path, /too small|truncated/, () => openSlide(path));
  });

  test('IFD loop', async () => {
    const entries = tiledRgb(16, 16, 16, [200], [16 * 16 * 3]);
    const path = write('loop.tif', craftTiff(entries, { nextIfd: 8, extra: 1000 }));
    await failsClearly(path, /IFD loop/, () => openSlide(path));
  });

  test('tile offsets beyond the file', async () => {
    const path = write('offsets.tif', craftTiff(tiledRgb(16, 16, 16, [1e9], [768]), { extra: 1000 }));
    await failsClearly(path, /beyond the end of the file/, () => openAndRead(path));
  });

  test('too few tile offsets for the image size', async () => {
    const path = write('counts.tif', craftTiff(tiledRgb(64, 64, 16, [200, 200], [10, 10]), { extra: 1000 }));
    await failsClearly(path, /2 tile\/strip offsets for 16 blocks/, () => openAndRead(path));
  });

  test('absurd dimensions do not allocate', async () => {
    const before = process.memoryUsage().rss;
    // 10^6 x 10^6 tiled: would need 15 million tile offsets.
    const tiled = write('huge-tiled.tif', craftTiff(tiledRgb(1e6, 1e6, 256, [200], [10]), { extra: 1000 }));
    await failsClearly(tiled, /offsets for \d+ blocks/, () => openAndRead(tiled));
    // 10^6 x 10^6 in one uncompressed strip: refused when read, and no level small enough for a thumbnail.
    const strip: Entry[] = [
      [256, 4, [1e6]],
      [257, 4, [1e6]],
      [258, 3, [8]],
      [259, 3, [1]],
      [262, 3, [1]],
      [273, 4, [200]],
      [277, 3, [1]],
      [278, 4, [1e6]],
      [279, 4, [100]],
    ];
    const stripped = write('huge-strip.tif', craftTiff(strip, { extra: 1000 }));
    await failsClearly(stripped, /too large/, () => openAndRead(stripped));
    const s = await openSlide(stripped);
    await failsClearly(stripped, /too large/, () => s.thumbnail(256));
    await failsClearly(stripped, /too large/, () =>
      s.readRegion({ x: 0, y: 0, level: 0, width: 1e6, height: 1e6 }),
    );
    await s.close();
    assert.ok(process.memoryUsage().rss - before < 200e6, 'no large allocation');
  });

  test('unsupported compression names the codec', async () => {
    const path = write('lerc.tif', craftTiff(tiledRgb(16, 16, 16, [200], [50], 34887), { extra: 1000 }));
    await failsClearly(path, /unsupported compression 34887 \(LERC\)/, () => openAndRead(path));
  });

  test('corrupt compressed tile data', async () => {
    const path = write('bad-deflate.tif', craftTiff(tiledRgb(16, 16, 16, [200], [50], 8), { extra: 1000 }));
    await failsClearly(path, /cannot decode tile \(0, 0\)/, () => openAndRead(path));
  });

  test('OME-Zarr folder that is not one', async () => {
    const path = join(dir, 'empty.zarr');
    await failsClearly(path, /.+/, () => openSlide(path));
  });
});

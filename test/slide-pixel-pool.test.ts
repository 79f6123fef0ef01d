/**
 * Recycled block buffers (slide/pixel-pool.ts): blocks evicted from the cache are reused by later decodes, and reads
 * through a cache small enough to evict and reuse on nearly every read (concurrent reads sharing blocks included)
 * give exactly the pixels of reads through a cache that never evicts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BlockCache } from '../src/slide/cache.ts';
import { openSlide, releasePixels } from '../src/slide/index.ts';
import { idlePixelBytes, recyclePixelBuffer, takePixelBuffer } from '../src/slide/pixel-pool.ts';

const SAMPLE_SVS = fileURLToPath(new URL('../samples/cmu-1-small-region.svs', import.meta.url));

test('the pool hands back whole evicted buffers and ignores views of part of one', () => {
  const whole = new Uint8Array(4096 * 3);
  const before = idlePixelBytes();
  recyclePixelBuffer(whole.subarray(0, 4096));
  assert.equal(idlePixelBytes(), before, 'a view of part of a buffer is not taken');
  recyclePixelBuffer(whole);
  assert.equal(idlePixelBytes(), before + whole.byteLength);
  assert.equal(takePixelBuffer(whole.byteLength), whole, 'the same buffer comes back');
  assert.equal(idlePixelBytes(), before);
  assert.notEqual(takePixelBuffer(whole.byteLength), whole, 'and only once');
});

test('the block cache recycles what it evicts', async () => {
  const cache = new BlockCache(8192);
  const first = new Uint8Array(8192).fill(1);
  await cache.get('a', async () => first);
  await cache.get('b', async () => new Uint8Array(8192).fill(2)); // evicts 'a'
  assert.ok(!cache.has('a'));
  assert.equal(takePixelBuffer(8192), first);
});

test('reads that evict and reuse block buffers on nearly every read give the pixels of reads that never evict', async () => {
  const roomy = await openSlide(SAMPLE_SVS, { cacheBytes: 256 * 1024 * 1024 });
  // Room for 12 of the 240x240 RGBA tiles, reads over a 5x5-tile corner: many hits, and many evictions whose
  // buffers the next decodes reuse.
  const tight = await openSlide(SAMPLE_SVS, { cacheBytes: 12 * 240 * 240 * 4 });
  try {
    const width = 1200;
    const height = 1200;
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const regions = Array.from({ length: 96 }, () => ({
      x: rand(width - 300),
      y: rand(height - 300),
      level: 0,
      width: 64 + rand(236),
      height: 64 + rand(236),
    }));
    const expected = await Promise.all(regions.map((r) => roomy.readRegion(r)));
    for (let start = 0; start < regions.length; start += 8) {
      // Eight reads in flight, as the patch stream and inference issue them: blocks shared and evicted meanwhile.
      const batch = regions.slice(start, start + 8);
      const got = await Promise.all(batch.map((r) => tight.readRegion(r)));
      got.forEach((img, i) => {
        assert.ok(Buffer.from(img.data).equals(Buffer.from(expected[start + i].data)), `region ${start + i}`);
      });
    }
  } finally {
    await roomy.close();
    await tight.close();
  }
});

test('a released region backs the next read of its size, which still equals a fresh read', async () => {
  const slide = await openSlide(SAMPLE_SVS);
  const fresh = await openSlide(SAMPLE_SVS, { cacheBytes: 0 });
  try {
    const size = { width: 300, height: 200 };
    const first = await slide.readRegion({ x: 500, y: 700, level: 0, ...size });
    const buffer = first.data.buffer;
    // Scribbled over: what the next read returns must not depend on what the buffer held.
    first.data.fill(7);
    releasePixels(first.data);
    const at = { x: 1210, y: 95, level: 0, ...size };
    const reused = await slide.readRegion(at);
    assert.ok(reused.data.buffer === buffer, 'the released buffer was reused');
    const expected = await fresh.readRegion(at);
    assert.ok(Buffer.from(reused.data).equals(Buffer.from(expected.data)), 'same pixels as a fresh read');
    // Arrays the pool did not make are left alone.
    const foreign = new Uint8Array(300 * 200 * 4);
    releasePixels(foreign);
    const next = await slide.readRegion({ x: 0, y: 0, level: 0, ...size });
    assert.ok(next.data.buffer !== foreign.buffer);
  } finally {
    await slide.close();
    await fresh.close();
  }
});

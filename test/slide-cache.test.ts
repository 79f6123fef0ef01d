/** The decoded-block cache: segmented LRU within its byte budget, shared in-flight loads, per-slide eviction. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlockCache } from '../src/slide/cache.ts';

const KB = 1024;
const block = (fill: number) => new Uint8Array(KB).fill(fill);

test('a block used twice survives a stream of one-off blocks larger than the cache', async () => {
  const cache = new BlockCache(10 * KB);
  let loads = 0;
  const load = (fill: number) => async () => {
    loads++;
    return block(fill);
  };
  await cache.get('hot', load(1));
  await cache.get('hot', load(1)); // second use: promoted
  for (let i = 0; i < 200; i++) await cache.get(`once-${i}`, load(i & 0xff));
  assert.ok(cache.size <= 10 * KB, `size ${cache.size} within the budget`);
  const before = loads;
  const hot = await cache.get('hot', load(1));
  assert.equal(loads, before, 'the hot block was not loaded again');
  assert.equal(hot[0], 1);
  // The one-off stream cycled through probation: the most recent ones are there, the oldest are gone.
  assert.ok(cache.has('once-199'));
  assert.ok(!cache.has('once-0'));
});

test('the protected segment is bounded: hot blocks beyond its share fall back to probation and out', async () => {
  const cache = new BlockCache(10 * KB);
  for (let i = 0; i < 30; i++) {
    await cache.get(`k${i}`, async () => block(i));
    await cache.get(`k${i}`, async () => block(i));
    assert.ok(cache.size <= 10 * KB, `size ${cache.size} after ${i}`);
  }
  assert.ok(cache.has('k29'));
  assert.ok(!cache.has('k0'));
  assert.equal(cache.size, 10 * KB);
});

test('concurrent requests for one key share one load; a failed load is not cached', async () => {
  const cache = new BlockCache(10 * KB);
  let loads = 0;
  const slow = async () => {
    loads++;
    await new Promise((r) => setTimeout(r, 10));
    return block(7);
  };
  const [a, b] = await Promise.all([cache.get('k', slow), cache.get('k', slow)]);
  assert.equal(loads, 1);
  assert.equal(a, b);
  await assert.rejects(
    cache.get('bad', async () => {
      throw new Error('corrupt tile');
    }),
    /corrupt tile/,
  );
  assert.ok(!cache.has('bad'));
});

test('evictPrefix drops one slide’s blocks from both segments and keeps the byte count right', async () => {
  const cache = new BlockCache(100 * KB);
  for (const slide of ['a', 'b']) {
    for (let i = 0; i < 5; i++) await cache.get(`${slide}:${i}`, async () => block(i));
    await cache.get(`${slide}:0`, async () => block(0)); // one protected block per slide
  }
  assert.equal(cache.size, 10 * KB);
  cache.evictPrefix('a:');
  assert.equal(cache.size, 5 * KB);
  assert.ok(!cache.has('a:0') && !cache.has('a:4'));
  assert.ok(cache.has('b:0') && cache.has('b:4'));
});

test('blocks larger than the budget are returned but not kept', async () => {
  const cache = new BlockCache(KB / 2);
  const v = await cache.get('big', async () => block(3));
  assert.equal(v.length, KB);
  assert.equal(cache.size, 0);
});

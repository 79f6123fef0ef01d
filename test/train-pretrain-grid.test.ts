/**
 * Pretraining's grid sampler continues across steps (every cell once per epoch, a fresh order each epoch) instead of
 * restarting at every step, and a list of mpps samples several magnifications.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { ready } from '../src/engine/index.ts';
import { createRng } from '../src/patching/random.ts';
import { loadPretrainConfig } from '../src/train/pretrain-config.ts';
import { openPatchSource } from '../src/train/pretrain-data.ts';
import { ROOT } from './fixtures.ts';

const CMU = join(ROOT, 'samples', 'cmu-1-small-region.svs');

before(async () => {
  await ready('cpu');
});

test("pretrain's grid walks every cell once per epoch across steps, reshuffled each epoch", async () => {
  const cfg = await loadPretrainConfig(undefined, [], {
    data: { slides: [CMU], sampler: 'grid', mpp: 4 },
    patch: 64,
    batchSize: 6,
  });
  const source = await openPatchSource(cfg);
  try {
    // 2220×2967 px at 0.499 µm/px; 64 px at 4 µm/px = 513 level-0 px: 4 × 5 cells.
    const cells = 20;
    const seen: string[] = [];
    for (let step = 0; step < 7; step++) {
      const patches = await source.draw(6, createRng(step), step, step);
      seen.push(...patches.map((p) => `${p.source.x},${p.source.y}`));
    }
    const first = seen.slice(0, cells);
    const second = seen.slice(cells, 2 * cells);
    assert.equal(new Set(first).size, cells, 'epoch 1 repeats a cell');
    assert.equal(new Set(second).size, cells, 'epoch 2 repeats a cell');
    assert.deepEqual([...first].sort(), [...second].sort());
    assert.notDeepEqual(first, second, 'each epoch is reshuffled');
    // Steps 0, 1, 2 train on different patches (the old grid restarted at every step).
    assert.notDeepEqual(seen.slice(0, 6), seen.slice(6, 12));
  } finally {
    await source.close();
  }
});

test('pretrain with data.mpps draws patches at each of the magnifications', async () => {
  const cfg = await loadPretrainConfig(undefined, [], {
    data: { slides: [CMU], sampler: 'random', mpps: [2, 4] },
    patch: 64,
    batchSize: 8,
  });
  const source = await openPatchSource(cfg);
  try {
    assert.match(source.description, /multi-magnification/);
    const patches = await source.draw(16, createRng(1), 3, 0);
    assert.equal(patches.length, 16);
    assert.deepEqual([...new Set(patches.map((p) => p.source.mpp))].sort(), [2, 4]);
  } finally {
    await source.close();
  }
  await assert.rejects(
    loadPretrainConfig(undefined, [], { data: { slides: [CMU], mpps: [] }, patch: 64 }),
    /data.mpps must be a non-empty list/,
  );
});

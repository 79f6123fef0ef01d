/** Streaming evaluation keeps only the confusion matrix: 100 images of 1000x1000 pixels stay out of memory. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ConfusionMatrix } from '../src/metrics/index.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function retained(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

test('100 images of 1000x1000 stream through a 3-class matrix without being held', () => {
  const C = 3;
  const side = 1000;
  const cm = new ConfusionMatrix(C, { ignoreIndex: 255 });
  const expected = new Float64Array(C * C);
  const before = retained();
  let peakGrowth = 0;
  for (let img = 0; img < 100; img++) {
    // A fresh pair per image, as a data loader would produce; every 10th pixel of the target is ignored.
    const pred = new Uint8Array(side * side);
    const target = new Uint8Array(side * side);
    for (let i = 0; i < pred.length; i++) {
      pred[i] = (i + img) % C;
      target[i] = i % 10 === 0 ? 255 : (i * 7 + (i >> 5)) % C;
      if (target[i] !== 255) expected[target[i]! * C + pred[i]!]++;
    }
    cm.update(pred, target);
    if (img % 25 === 24) peakGrowth = Math.max(peakGrowth, retained() - before);
  }
  const m = cm.compute();
  assert.deepEqual(m.matrix.flat(), Array.from(expected));
  assert.equal(m.pixels, 100 * side * side * 0.9);
  // 100 images hold 200 MB of labels; the matrix is 72 bytes. Allow a few MB of allocator noise.
  assert.ok(peakGrowth < 8 * 1024 * 1024, `retained memory grew by ${(peakGrowth / 1048576).toFixed(1)} MB`);
});

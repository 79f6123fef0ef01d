/**
 * Test-time augmentation in the sliding window: every view is mapped back to the image frame, so a model that is
 * itself equivariant to flips and transposes gives the same probabilities with and without TTA (a wrongly inverted
 * view would not), while a model that is not equivariant gives the average of the views.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { slidingWindowProbabilities, type TileModel } from '../src/core/sliding.ts';
import { accumulateViewHWC, ttaViews, viewPixelsNCHW } from '../src/core/tta.ts';
import { ready, tf } from '../src/engine/index.ts';

const W = 100;
const H = 72;

function randomImage(seed: number): Uint8Array {
  const img = new Uint8Array(W * H * 3);
  let s = seed;
  for (let i = 0; i < img.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    img[i] = s >>> 24;
  }
  return img;
}

/** Stride-4 average pooling then a fixed 3→2 linear map: equivariant to flips and transposes of square tiles. */
const equivariant: TileModel = {
  numLabels: 2,
  logits: (x) =>
    tf.tidy(() => {
      const pooled = tf.avgPool(x, 4, 4, 'valid') as tf.Tensor4D;
      return tf.conv2d(pooled, tf.tensor4d([1.5, -2, 0.5, 1, -1, 2], [1, 1, 3, 2]), 1, 'valid');
    }),
};

/** Adds a ramp along the tile's x axis: not flip-invariant. */
const leftBiased: TileModel = {
  numLabels: 2,
  logits: (x) =>
    tf.tidy(() => {
      const base = equivariant.logits(x) as tf.Tensor4D;
      const [, h, w] = base.shape;
      const ramp = tf.tile(tf.reshape(tf.linspace(3, -3, w), [1, 1, w, 1]), [1, h, 1, 1]);
      return tf.add(base, tf.concat([ramp, tf.zerosLike(ramp)], 3)) as tf.Tensor4D;
    }),
};

test('views: none 1, flip 4, d4 8 distinct; bad names rejected', () => {
  assert.equal(ttaViews('none').length, 1);
  assert.equal(ttaViews('flip').length, 4);
  const d4 = ttaViews('d4');
  assert.equal(new Set(d4.map((v) => JSON.stringify(v))).size, 8);
  assert.throws(() => ttaViews('rot' as never), /tta must be none, flip or d4/);
});

test('an equivariant model gives the same probabilities with flip and d4 TTA', async () => {
  await ready();
  const img = randomImage(3);
  const o = { tile: 48, overlap: 16 };
  const plain = await slidingWindowProbabilities(equivariant, img, W, H, o);
  for (const tta of ['flip', 'd4'] as const) {
    const aug = await slidingWindowProbabilities(equivariant, img, W, H, { ...o, tta });
    let worst = 0;
    for (let i = 0; i < plain.length; i++) worst = Math.max(worst, Math.abs(plain[i]! - aug[i]!));
    assert.ok(worst < 1e-5, `${tta}: max |Δ| ${worst}`);
  }
});

test('a model that is not equivariant is averaged over its views', async () => {
  await ready();
  const img = randomImage(5);
  // One tile covering the image: flip TTA averages the ramp with its mirror image, so the left/right bias of
  // class 0 cancels, which it does not without TTA.
  const o = { tile: 128, overlap: 0 };
  const bias = (p: Float32Array) => {
    let left = 0;
    let right = 0;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < 20; x++) left += p[(y * W + x) * 2]!;
      for (let x = W - 20; x < W; x++) right += p[(y * W + x) * 2]!;
    }
    return (left - right) / (H * 20);
  };
  const plain = bias(await slidingWindowProbabilities(leftBiased, img, W, H, o));
  const equi = bias(await slidingWindowProbabilities(equivariant, img, W, H, o));
  const flip = bias(await slidingWindowProbabilities(leftBiased, img, W, H, { ...o, tta: 'flip' }));
  assert.ok(plain - equi > 0.3, `the ramp biases class 0 to the left (${plain} vs ${equi})`);
  assert.ok(Math.abs(flip - equi) < Math.abs(plain - equi) / 3, `flip TTA removes most of it (${flip})`);
});

test('array views (whole-slide path) equal tensor flips/transposes and invert exactly', async () => {
  await ready();
  const T = 6;
  const x = Float32Array.from({ length: T * T }, (_, i) => i);
  const img = tf.tensor4d(x, [1, T, T, 1]);
  for (const v of ttaViews('d4')) {
    const seen = viewPixelsNCHW(x, 1, 1, T, v, new Float32Array(T * T));
    let t: tf.Tensor4D = img;
    if (v.flipH) t = tf.reverse(t, 2);
    if (v.flipV) t = tf.reverse(t, 1);
    if (v.transpose) t = tf.transpose(t, [0, 2, 1, 3]);
    assert.deepEqual(Array.from(seen), Array.from(t.dataSync()), JSON.stringify(v));
    const back = new Float32Array(T * T);
    accumulateViewHWC(seen, T, 1, v, 1, back);
    assert.deepEqual(Array.from(back), Array.from(x));
  }
  img.dispose();
});

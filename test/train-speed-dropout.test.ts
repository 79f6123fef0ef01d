/**
 * slideseg's hashed-mask dropout kernel (issue 13): the SIMD loop, the JavaScript loop and the cpu kernel give the
 * same mask for the same seed; the kept fraction is 1 − rate within sampling noise; kept values are x / keep;
 * the gradient through SegFormer's dropout op is dy on exactly the kept elements, scaled the same way; another
 * seed gives an independent mask.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import { DROPOUT } from '../src/engine/kernels/dropout.ts';
import { setSimdKernels } from '../src/engine/kernels/simd.ts';
import { dropout } from '../src/models/segformer/ops.ts';

/** Values that are never 0 (so a 0 output means dropped), n not a multiple of 4 (the loops' tails run). */
function inputValues(n: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = 1 + ((i * 7919) % 1000) / 100;
  return v;
}

function runKernel(values: Float32Array, rate: number, seed: number): Float32Array {
  return tf.tidy(() => {
    const x = tf.tensor1d(values);
    return (tf.engine().runKernel(DROPOUT, { x }, { rate, seed }) as tf.Tensor).dataSync() as Float32Array;
  });
}

const N = 100_003;

describe('hashed-mask dropout kernel', () => {
  it('gives the same output on wasm (SIMD and JavaScript loops) and cpu', async () => {
    const x = inputValues(N);
    await ready('wasm');
    const simd = runKernel(x, 0.1, 12345);
    setSimdKernels(false);
    const js = runKernel(x, 0.1, 12345);
    setSimdKernels(true);
    await ready('cpu');
    const cpu = runKernel(x, 0.1, 12345);
    await ready('wasm');
    assert.deepEqual([...simd], [...js], 'SIMD loop vs JavaScript loop');
    assert.deepEqual([...simd], [...cpu], 'wasm vs cpu');
  });

  for (const rate of [0.1, 0.5]) {
    it(`keeps 1 − ${rate} of the elements, scaled by 1 / keep`, async () => {
      await ready('wasm');
      const x = inputValues(N);
      const y = runKernel(x, rate, 7);
      let keptCount = 0;
      for (let i = 0; i < N; i++) {
        if (y[i] === 0) continue;
        keptCount++;
        assert.equal(y[i], Math.fround(x[i]! * Math.fround(1 / (1 - rate))), `element ${i}`);
      }
      const keep = 1 - rate;
      const sd = Math.sqrt((keep * (1 - keep)) / N);
      const frac = keptCount / N;
      assert.ok(Math.abs(frac - keep) < 5 * sd, `kept fraction ${frac} vs ${keep} (±${(5 * sd).toFixed(4)})`);
    });
  }

  it('another seed gives an independent mask; the same seed the same mask', async () => {
    await ready('wasm');
    const x = inputValues(N);
    const a = runKernel(x, 0.5, 1);
    const b = runKernel(x, 0.5, 2);
    const again = runKernel(x, 0.5, 1);
    assert.deepEqual([...again], [...a]);
    let agree = 0;
    for (let i = 0; i < N; i++) if ((a[i] === 0) === (b[i] === 0)) agree++;
    // Independent masks with keep 0.5 agree on half of the elements.
    const sd = Math.sqrt(0.25 / N);
    assert.ok(Math.abs(agree / N - 0.5) < 5 * sd, `masks of seeds 1 and 2 agree on ${agree / N}`);
    // Neighbouring elements are independent too (no lattice from the index hash).
    let pairs = 0;
    for (let i = 1; i < N; i++) if ((a[i] === 0) === (a[i - 1] === 0)) pairs++;
    assert.ok(Math.abs(pairs / (N - 1) - 0.5) < 5 * sd, `neighbours agree on ${pairs / (N - 1)}`);
  });

  for (const backend of ['wasm', 'cpu']) {
    it(`the gradient through SegFormer's dropout op is dy on the kept elements, ×1/keep (${backend})`, async () => {
      await ready(backend);
      const x = tf.tensor2d(inputValues(4099 * 3), [4099, 3]);
      const dy = tf.tensor2d(inputValues(4099 * 3).reverse(), [4099, 3]);
      const y = dropout(x, 0.25, 99).dataSync();
      const g = tf
        .grad((t: tf.Tensor) => tf.sum(tf.mul(dropout(t, 0.25, 99), dy)))(x)
        .dataSync();
      const dyv = dy.dataSync();
      for (let i = 0; i < y.length; i++) {
        const expected = y[i] === 0 ? 0 : Math.fround(dyv[i]! * Math.fround(1 / 0.75));
        assert.equal(g[i], expected, `element ${i}`);
      }
      tf.dispose([x, dy]);
    });
  }
});

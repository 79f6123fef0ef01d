/**
 * SegFormer's dropout op with engine/dropout-mask.ts's inline Alea (issue 13) against `tf.dropout` itself: the
 * same values and the same gradients bit for bit, element-wise and with a broadcast noise shape (drop path), on
 * wasm and cpu, so the speed-up changes no training run.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dropoutMultipliers } from '../src/engine/dropout-mask.ts';
import { ready, tf } from '../src/engine/index.ts';
import { dropout } from '../src/models/segformer/ops.ts';

function inputValues(n: number, seed: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.sin(i * 0.37 + seed) * 3 + 0.01;
  return v;
}

const CASES: { shape: number[]; rate: number; seed: number; noiseShape?: number[] }[] = [
  { shape: [1021, 33], rate: 0.1, seed: 1234567 },
  { shape: [4, 257, 9], rate: 0.5, seed: 7 },
  { shape: [16, 50, 8], rate: 0.5, seed: 2147483646, noiseShape: [16, 1, 1] },
  { shape: [3, 40, 5], rate: 0.3, seed: 0, noiseShape: [3, 1, 1] },
];

describe("SegFormer's dropout", () => {
  for (const backend of ['wasm', 'cpu']) {
    for (const c of CASES) {
      it(`equals tf.dropout in values and gradients (${backend}, [${c.shape}], rate ${c.rate}${c.noiseShape ? `, noise [${c.noiseShape}]` : ''})`, async () => {
        await ready(backend);
        const size = c.shape.reduce((a, b) => a * b, 1);
        const x = tf.tensor(inputValues(size, c.seed % 97), c.shape);
        const dy = tf.tensor(inputValues(size, 5), c.shape);
        const ours = (t: tf.Tensor) => dropout(t, c.rate, c.seed, c.noiseShape);
        const theirs = (t: tf.Tensor) => tf.dropout(t, c.rate, c.noiseShape, c.seed);
        const got = ours(x).dataSync();
        const expected = theirs(x).dataSync();
        assert.deepEqual([...got], [...expected]);
        const zeros = [...got].filter((v) => v === 0).length;
        assert.ok(zeros > 0 && zeros < size, `some but not all elements dropped (${zeros} of ${size})`);
        const g = tf
          .grad((t: tf.Tensor) => tf.sum(tf.mul(ours(t), dy)))(x)
          .dataSync();
        const gRef = tf
          .grad((t: tf.Tensor) => tf.sum(tf.mul(theirs(t), dy)))(x)
          .dataSync();
        assert.deepEqual([...g], [...gRef]);
        tf.dispose([x, dy]);
      });
    }
  }

  it('refuses a rate outside [0, 1)', () => {
    assert.throws(() => dropoutMultipliers(4, 1, 1), /rate must be in \[0, 1\)/);
  });
});

/**
 * SegFormer building blocks: PyTorch-semantics bilinear upsampling (forward and gradient) and exact GELU, on
 * both backends.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import { bilinearMatrix, gelu, resizeBilinear } from '../src/models/segformer/ops.ts';

/** out[o] = Σ_i R[o, i] x[i] along H then W, written out with plain loops (the torch formula, float64). */
function referenceResize(x: Float32Array, [n, h, w, c]: number[], outH: number, outW: number): Float64Array {
  const ry = bilinearMatrix(h, outH);
  const rx = bilinearMatrix(w, outW);
  const out = new Float64Array(n * outH * outW * c);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < outH; oy++)
      for (let ox = 0; ox < outW; ox++)
        for (let ch = 0; ch < c; ch++) {
          let acc = 0;
          for (let iy = 0; iy < h; iy++) {
            const wy = ry[oy * h + iy];
            if (wy === 0) continue;
            for (let ix = 0; ix < w; ix++) acc += wy * rx[ox * w + ix] * x[((b * h + iy) * w + ix) * c + ch];
          }
          out[((b * outH + oy) * outW + ox) * c + ch] = acc;
        }
  return out;
}

describe('SegFormer ops', () => {
  it('bilinear matrices follow PyTorch align_corners=False (half-pixel, clamped at the borders)', () => {
    // 2 → 5: source positions max(0, (o + 0.5) · 0.4 − 0.5) = 0, 0.1, 0.5, 0.9, 1.3 (clamped to the last pixel).
    const m = bilinearMatrix(2, 5);
    const expected = [1, 0, 0.9, 0.1, 0.5, 0.5, 0.1, 0.9, 0, 1];
    expected.forEach((v, i) => {
      assert.ok(Math.abs(m[i] - v) < 1e-6, `entry ${i}: ${m[i]} vs ${v}`);
    });
  });

  for (const backend of ['wasm', 'cpu']) {
    it(`${backend}: resizeBilinear matches the matrix form and its gradient is the adjoint`, async () => {
      await ready(backend);
      const shape: [number, number, number, number] = [2, 3, 5, 4];
      const [outH, outW] = [17, 24]; // the odd-size fixture's stage-4 → stage-1 upsampling
      const x = tf.randomNormal(shape, 0, 1, 'float32', 5) as tf.Tensor4D;
      const y = resizeBilinear(x, [outH, outW]);
      const ref = referenceResize(x.dataSync() as Float32Array, shape, outH, outW);
      const got = y.dataSync();
      let worst = 0;
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]));
      assert.ok(worst < 1e-5, `forward max |diff| ${worst}`);

      // <R x, d> = <x, Rᵀ d> for every x, so the gradient of sum(R(x) · d) is Rᵀ d.
      const d = tf.randomNormal([2, outH, outW, 4], 0, 1, 'float32', 6);
      const grad = tf.grad((t: tf.Tensor) =>
        tf.sum(tf.mul(resizeBilinear(t as tf.Tensor4D, [outH, outW]), d)),
      )(x);
      const probe = tf.randomNormal(shape, 0, 1, 'float32', 7) as tf.Tensor4D;
      const lhs = tf.sum(tf.mul(resizeBilinear(probe, [outH, outW]), d)).dataSync()[0];
      const rhs = tf.sum(tf.mul(probe, grad)).dataSync()[0];
      assert.ok(Math.abs(lhs - rhs) < 1e-4 * Math.max(1, Math.abs(lhs)), `adjoint ${lhs} vs ${rhs}`);
      tf.dispose([x, y, d, grad, probe]);
    });

    it(`${backend}: gelu is the exact erf form`, async () => {
      await ready(backend);
      const xs = [-3, -1, -0.5, 0, 0.5, 1, 3];
      // x · Φ(x) with erf(x/√2) = P(|Z| < x): 0.3829249225, 0.6826894921, 0.9973002039 for x = 0.5, 1, 3.
      const out = gelu(tf.tensor1d(xs)).dataSync();
      const expected = [
        -3 * 0.5 * (1 - 0.9973002039),
        -1 * 0.5 * (1 - 0.6826894921),
        -0.5 * 0.5 * (1 - 0.3829249225),
        0,
        0.5 * 0.5 * (1 + 0.3829249225),
        1 * 0.5 * (1 + 0.6826894921),
        3 * 0.5 * (1 + 0.9973002039),
      ];
      expected.forEach((v, i) => {
        assert.ok(Math.abs(out[i] - v) < 1e-6, `gelu(${xs[i]}) ${out[i]} vs ${v}`);
      });
    });
  }
});

/**
 * The one-pass AdamW kernel (issue 13) against the TF.js composition it replaces in optim/adamw.ts: bit-identical
 * parameters and moments over several steps, on wasm (SIMD loop and its JavaScript tail) and cpu, with weight
 * decay on and off and a learning-rate multiplier, as the trainer's parameter groups use them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import { setSimdKernels } from '../src/engine/kernels/simd.ts';
import { AdamW, setFusedAdamW } from '../src/optim/adamw.ts';

function values(n: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

/** Parameters, moments and step count after `steps` updates with fixed gradients per step. */
function run(fused: boolean, simd: boolean): Float32Array[] {
  setFusedAdamW(fused);
  setSimdKernels(simd);
  try {
    const shapes = [[37, 5], [130], [3, 3, 4, 8]];
    const params = shapes.map((s, i) =>
      tf.variable(
        tf.tensor(
          values(
            s.reduce((a, b) => a * b),
            i + 1,
            1,
          ),
          s,
        ),
      ),
    );
    const opt = new AdamW(
      [
        { params: new Map([['a', params[0]!]]) },
        { params: new Map([['b', params[1]!]]), weightDecay: 0 },
        { params: new Map([['c', params[2]!]]), lrMultiplier: 10 },
      ],
      { lr: 6e-4, weightDecay: 0.01 },
    );
    for (let step = 0; step < 4; step++) {
      const grads = new Map(
        ['a', 'b', 'c'].map((k, i) => [
          k,
          tf.tensor(values(params[i]!.size, 100 * step + i, step === 2 ? 1e-6 : 0.3), params[i]!.shape),
        ]),
      );
      opt.step(grads);
      for (const g of grads.values()) g.dispose();
    }
    const out = [
      ...params.map((p) => p.dataSync() as Float32Array),
      ...[...opt.stateTensors().values()].map((t) => t.dataSync() as Float32Array),
    ].map((a) => a.slice());
    opt.dispose();
    for (const p of params) p.dispose();
    return out;
  } finally {
    setFusedAdamW(true);
    setSimdKernels(true);
  }
}

describe('one-pass AdamW kernel', () => {
  for (const backend of ['wasm', 'cpu']) {
    it(`gives the TF.js composition's parameters and moments bit for bit (${backend})`, async () => {
      await ready(backend);
      assert.ok(tf.getKernel('SlidesegAdamW', backend), 'kernel registered');
      const reference = run(false, true);
      const variants = backend === 'wasm' ? [run(true, true), run(true, false)] : [run(true, true)];
      for (const got of variants) {
        assert.equal(got.length, reference.length);
        for (const [i, a] of got.entries()) assert.deepEqual([...a], [...reference[i]!], `tensor ${i}`);
      }
      // The update moved every parameter (the comparison is not between untouched copies).
      const initial = values(37 * 5, 1, 1);
      assert.ok(reference[0]!.every((x, i) => x !== initial[i]));
    });
  }
});

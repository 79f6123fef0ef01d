/**
 * One AdamW update of one parameter as one pass (wasm and cpu), in exactly the float32 operations and order of
 * the TF.js composition it replaces (src/optim/adamw.ts), so results are bit-identical:
 *   m' = m·β1 + g·(1 − β1),  v' = v·β2 + g²·(1 − β2),
 *   p' = p·(1 − lr·wd) − m' / (√(v' / bc2) + eps) · (lr / bc1).
 * The composition runs ~13 kernels and allocates ~10 temporaries per parameter (205 of them in SegFormer-B0).
 */

import type { NamedAttrMap } from '@tensorflow/tfjs-core';
import type { HostKernelSpec } from './host-kernel.ts';
import { simdKernels } from './simd.ts';
import { byteOffset, f32 } from './wasm-heap.ts';

export const ADAMW = 'SlidesegAdamW';

/** Attributes of the kernel: each is rounded to float32 once, as TF.js rounds a scalar operand. */
export interface AdamWAttrs {
  beta1: number;
  beta2: number;
  /** 1 − β1^t and 1 − β2^t */
  bc1: number;
  bc2: number;
  eps: number;
  lr: number;
  weightDecay: number;
}

function constants(attrs: NamedAttrMap) {
  const a = attrs as unknown as AdamWAttrs;
  const f = Math.fround;
  return {
    b1: f(a.beta1),
    oneMinusB1: f(1 - a.beta1),
    b2: f(a.beta2),
    oneMinusB2: f(1 - a.beta2),
    bc2: f(a.bc2),
    eps: f(a.eps),
    // wd = 0: the composition skips the product; p·1 is p, so one code path does both.
    decay: a.weightDecay !== 0 ? f(1 - a.lr * a.weightDecay) : 1,
    stepSize: f(a.lr / a.bc1),
  };
}

function adamwInto(ins: Float32Array[], outs: Float32Array[], attrs: NamedAttrMap, from: number): void {
  const [p, m, v, g] = ins as [Float32Array, Float32Array, Float32Array, Float32Array];
  const [pOut, mOut, vOut] = outs as [Float32Array, Float32Array, Float32Array];
  const c = constants(attrs);
  const f = Math.fround;
  for (let i = from; i < p.length; i++) {
    const gi = g[i]!;
    const mi = f(f(m[i]! * c.b1) + f(gi * c.oneMinusB1));
    const vi = f(f(v[i]! * c.b2) + f(f(gi * gi) * c.oneMinusB2));
    const denom = f(f(Math.sqrt(f(vi / c.bc2))) + c.eps);
    pOut[i] = f(f(p[i]! * c.decay) - f(f(mi / denom) * c.stepSize));
    mOut[i] = mi;
    vOut[i] = vi;
  }
}

/** Inputs p, m, v, g (same shape); attrs `AdamWAttrs`. Outputs p', m', v'. */
export const adamwSpec: HostKernelSpec = {
  kernelName: ADAMW,
  inputs: ['p', 'm', 'v', 'g'],
  outShapes: ([p]) => [p!.shape, p!.shape, p!.shape],
  compute: (ins, outs, _shapes, attrs) => adamwInto(ins, outs, attrs, 0),
  // On wasm, the SIMD loop of simd.wat does all but the last n % 4 elements (the same float32 operations).
  computeWasm: (backend, ins, outs, attrs) => {
    const simd = simdKernels(backend);
    if (!simd) return false;
    const c = constants(attrs);
    const n = f32(backend, ins[0]!).length;
    const [p, m, v, g] = ins.map((t) => byteOffset(backend, t));
    const [pOut, mOut, vOut] = outs.map((t) => byteOffset(backend, t));
    simd.adamw(
      pOut!,
      mOut!,
      vOut!,
      p!,
      m!,
      v!,
      g!,
      n,
      c.b1,
      c.oneMinusB1,
      c.b2,
      c.oneMinusB2,
      c.bc2,
      c.eps,
      c.decay,
      c.stepSize,
    );
    adamwInto(
      ins.map((t) => f32(backend, t)),
      outs.map((t) => f32(backend, t)),
      attrs,
      n - (n % 4),
    );
    return true;
  },
};

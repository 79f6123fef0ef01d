/**
 * Exact GELU, y = x·Φ(x) = ½x(1 + erf(x/√2)), and its gradient dx = dy·(Φ(x) + x·φ(x)), each as one pass (wasm
 * and cpu) instead of TF.js's chain (mul, erf, add, mul forward; exp, square, neg and five products backward).
 * erf is Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the approximation TF.js's own Erf kernels use; its
 * exp(−x²/2) is the same one φ needs.
 */

import type { HostKernelSpec } from './host-kernel.ts';
import { simdKernels } from './simd.ts';
import { byteOffset, f32 } from './wasm-heap.ts';

export const GELU = 'SlidesegGelu';
export const GELU_GRAD = 'SlidesegGeluGrad';

const P = 0.3275911;
const A1 = 0.254829592;
const A2 = -0.284496736;
const A3 = 1.421413741;
const A4 = -1.453152027;
const A5 = 1.061405429;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Φ(x) given x and e = exp(−x²/2). */
function normalCdf(x: number, e: number): number {
  const z = Math.abs(x) * Math.SQRT1_2;
  const t = 1 / (1 + P * z);
  const erfAbs = 1 - ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t * e;
  return 0.5 * (1 + (x < 0 ? -erfAbs : erfAbs));
}

function geluInto(x: Float32Array, y: Float32Array, from: number): void {
  const n = x.length;
  for (let i = from; i < n; i++) {
    const v = x[i]!;
    y[i] = v * normalCdf(v, Math.exp(-0.5 * v * v));
  }
}

function geluGradInto(dy: Float32Array, x: Float32Array, dx: Float32Array, from: number): void {
  const n = x.length;
  for (let i = from; i < n; i++) {
    const v = x[i]!;
    const e = Math.exp(-0.5 * v * v);
    dx[i] = dy[i]! * (normalCdf(v, e) + v * e * INV_SQRT_2PI);
  }
}

/** On wasm, the SIMD loops of simd.wat (float32, exp by polynomial) do all but the last n % 8 elements. */
export const geluSpec: HostKernelSpec = {
  kernelName: GELU,
  inputs: ['x'],
  outShapes: ([x]) => [x!.shape],
  compute: ([x], [y]) => geluInto(x!, y!, 0),
  computeWasm: (backend, [x], [y]) => {
    const simd = simdKernels(backend);
    if (!simd) return false;
    const n = f32(backend, x!).length;
    simd.gelu(byteOffset(backend, y!), byteOffset(backend, x!), n);
    geluInto(f32(backend, x!), f32(backend, y!), n - (n % 8));
    return true;
  },
};

export const geluGradSpec: HostKernelSpec = {
  kernelName: GELU_GRAD,
  inputs: ['dy', 'x'],
  outShapes: ([dy]) => [dy!.shape],
  compute: ([dy, x], [dx]) => geluGradInto(dy!, x!, dx!, 0),
  computeWasm: (backend, [dy, x], [dx]) => {
    const simd = simdKernels(backend);
    if (!simd) return false;
    const n = f32(backend, x!).length;
    simd.geluGrad(byteOffset(backend, dx!), byteOffset(backend, dy!), byteOffset(backend, x!), n);
    geluGradInto(f32(backend, dy!), f32(backend, x!), f32(backend, dx!), n - (n % 8));
    return true;
  },
};

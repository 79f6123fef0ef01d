/**
 * Exact GELU, y = x·Φ(x) = ½x(1 + erf(x/√2)), and its gradient dx = dy·(Φ(x) + x·φ(x)), each as one pass (wasm
 * and cpu) instead of TF.js's chain (mul, erf, add, mul forward; exp, square, neg and five products backward).
 * erf is Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the approximation TF.js's own Erf kernels use; its
 * exp(−x²/2) is the same one φ needs.
 */

import type { HostKernelSpec } from './host-kernel.ts';

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

export const geluSpec: HostKernelSpec = {
  kernelName: GELU,
  inputs: ['x'],
  outShapes: ([x]) => [x!.shape],
  compute: ([x], [y]) => {
    const n = x!.length;
    for (let i = 0; i < n; i++) {
      const v = x![i]!;
      y![i] = v * normalCdf(v, Math.exp(-0.5 * v * v));
    }
  },
};

export const geluGradSpec: HostKernelSpec = {
  kernelName: GELU_GRAD,
  inputs: ['dy', 'x'],
  outShapes: ([dy]) => [dy!.shape],
  compute: ([dy, x], [dx]) => {
    const n = x!.length;
    for (let i = 0; i < n; i++) {
      const v = x![i]!;
      const e = Math.exp(-0.5 * v * v);
      dx![i] = dy![i]! * (normalCdf(v, e) + v * e * INV_SQRT_2PI);
    }
  },
};

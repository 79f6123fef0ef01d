/**
 * LayerNorm over the last axis, forward and backward, each as one kernel (wasm and cpu). TF.js composes it from
 * mean, sub, square, rsqrt, mul and add, and its gradient from ~20 broadcasts and reductions; here the forward is
 * one pass per row (statistics in float64) that also returns each row's mean and 1/σ for the backward:
 *   x̂ = (x − μ)/σ, g = dy·γ, dx = (g − mean(g) − x̂·mean(g·x̂))/σ, dγ = Σ_rows dy·x̂, dβ = Σ_rows dy.
 */

import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { HostKernelSpec } from './host-kernel.ts';
import { SIMD_ROW_BLOCK, simdKernels } from './simd.ts';
import { byteOffset, f32, release } from './wasm-heap.ts';

export const LAYER_NORM = 'SlidesegLayerNorm';
export const LAYER_NORM_GRAD = 'SlidesegLayerNormGrad';

function rowsAndChannels(shape: number[]): [number, number] {
  const channels = shape[shape.length - 1] ?? 1;
  const size = shape.reduce((a, b) => a * b, 1);
  return [channels === 0 ? 0 : size / channels, channels];
}

/** Inputs x, gamma [C], beta [C]; attr eps. Outputs y (x's shape), mean [rows], invStd [rows]. */
export const layerNormSpec: HostKernelSpec = {
  kernelName: LAYER_NORM,
  inputs: ['x', 'gamma', 'beta'],
  outShapes: ([x]: TensorInfo[]) => {
    const [rows] = rowsAndChannels(x!.shape);
    return [x!.shape, [rows], [rows]];
  },
  compute: ([x, gamma, beta], [y, meanOut, invStdOut], [shape], attrs: NamedAttrMap) => {
    const eps = attrs.eps as number;
    const [rows, c] = rowsAndChannels(shape!);
    for (let r = 0, o = 0; r < rows; r++, o += c) {
      let s = 0;
      for (let i = 0; i < c; i++) s += x![o + i]!;
      const mean = s / c;
      let v = 0;
      for (let i = 0; i < c; i++) {
        const d = x![o + i]! - mean;
        v += d * d;
      }
      const inv = 1 / Math.sqrt(v / c + eps);
      for (let i = 0; i < c; i++) y![o + i] = (x![o + i]! - mean) * inv * gamma![i]! + beta![i]!;
      meanOut![r] = mean;
      invStdOut![r] = inv;
    }
  },
  // SIMD (simd.wat) when rows are a multiple of 4 long: statistics in float32 over one row.
  computeWasm: (backend, [x, gamma, beta], [y, mean, invStd], attrs) => {
    const [rows, c] = rowsAndChannels(x!.shape);
    const simd = c % 4 === 0 ? simdKernels(backend) : null;
    if (!simd) return false;
    simd.layerNorm(
      byteOffset(backend, y!),
      byteOffset(backend, x!),
      byteOffset(backend, gamma!),
      byteOffset(backend, beta!),
      byteOffset(backend, mean!),
      byteOffset(backend, invStd!),
      rows,
      c,
      attrs.eps as number,
    );
    return true;
  },
};

/** Inputs dy, x, gamma, mean, invStd (the forward's). Outputs dx, dgamma, dbeta. */
export const layerNormGradSpec: HostKernelSpec = {
  kernelName: LAYER_NORM_GRAD,
  inputs: ['dy', 'x', 'gamma', 'mean', 'invStd'],
  outShapes: ([dy, , gamma]: TensorInfo[]) => [dy!.shape, gamma!.shape, gamma!.shape],
  compute: ([dy, x, gamma, meanIn, invStdIn], [dx, dgammaOut, dbetaOut], [shape]) => {
    const [rows, c] = rowsAndChannels(shape!);
    const dgamma = new Float64Array(c);
    const dbeta = new Float64Array(c);
    const xHat = new Float64Array(c);
    for (let r = 0, o = 0; r < rows; r++, o += c) {
      const mean = meanIn![r]!;
      const inv = invStdIn![r]!;
      let sumG = 0;
      let sumGx = 0;
      for (let i = 0; i < c; i++) {
        const xh = (x![o + i]! - mean) * inv;
        const d = dy![o + i]!;
        const g = d * gamma![i]!;
        xHat[i] = xh;
        sumG += g;
        sumGx += g * xh;
        dgamma[i] += d * xh;
        dbeta[i] += d;
      }
      const meanG = sumG / c;
      const meanGx = sumGx / c;
      for (let i = 0; i < c; i++) dx![o + i] = (dy![o + i]! * gamma![i]! - meanG - xHat[i]! * meanGx) * inv;
    }
    dgammaOut!.set(dgamma);
    dbetaOut!.set(dbeta);
  },
  // SIMD (simd.wat) when rows are a multiple of 4 long; dγ and dβ summed in float32 over blocks of rows, then
  // in float64 across blocks.
  computeWasm: (backend, [dy, x, gamma, mean, invStd], [dx, dgammaOut, dbetaOut]) => {
    const [rows, c] = rowsAndChannels(x!.shape);
    const simd = c % 4 === 0 ? simdKernels(backend) : null;
    if (!simd) return false;
    const partial = backend.makeOutput([2, c], 'float32');
    const pOff = byteOffset(backend, partial);
    const dgamma = new Float64Array(c);
    const dbeta = new Float64Array(c);
    const rowBytes = c * 4;
    for (let r0 = 0; r0 < rows; r0 += SIMD_ROW_BLOCK) {
      const n = Math.min(SIMD_ROW_BLOCK, rows - r0);
      f32(backend, partial).fill(0);
      simd.layerNormGrad(
        byteOffset(backend, dx!) + r0 * rowBytes,
        byteOffset(backend, dy!) + r0 * rowBytes,
        byteOffset(backend, x!) + r0 * rowBytes,
        byteOffset(backend, gamma!),
        byteOffset(backend, mean!) + r0 * 4,
        byteOffset(backend, invStd!) + r0 * 4,
        pOff,
        pOff + rowBytes,
        n,
        c,
      );
      const p = f32(backend, partial);
      for (let i = 0; i < c; i++) {
        dgamma[i] += p[i]!;
        dbeta[i] += p[c + i]!;
      }
    }
    release(backend, partial);
    f32(backend, dgammaOut!).set(dgamma);
    f32(backend, dbetaOut!).set(dbeta);
    return true;
  },
};

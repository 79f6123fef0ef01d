/**
 * Sum over leading axes for wasm (bias and broadcast gradients: [rows, channels] summed over rows) as one
 * streaming pass; the stock kernel first transposes the reduced axes to the end. Other reductions use the stock one.
 */

import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { SIMD_ROW_BLOCK, simdKernels } from './simd.ts';
import { byteOffset, f32, release, type WasmBackend } from './wasm-heap.ts';

export function sumKernel(fallback: KernelFunc | undefined): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.every((a, i) => a === i) && axes.length < x.shape.length;
    if (!leading || x.dtype !== 'float32' || !fallback) {
      if (!fallback) throw new Error('Sum: no stock wasm kernel to fall back on');
      return fallback(args);
    }
    const backend = args.backend as WasmBackend;
    const rows = tf.util.sizeFromShape(x.shape.slice(0, axes.length));
    const inner = tf.util.sizeFromShape(x.shape.slice(axes.length));
    const outShape = keepDims
      ? [...x.shape.slice(0, axes.length).map(() => 1), ...x.shape.slice(axes.length)]
      : x.shape.slice(axes.length);
    const out = backend.makeOutput(outShape, 'float32');
    const acc = new Float64Array(inner);
    const simd = inner % 4 === 0 ? simdKernels(backend) : null;
    if (simd) {
      // SIMD float32 sums over blocks of rows, added in float64 across blocks.
      const partial = backend.makeOutput([inner], 'float32');
      const pOff = byteOffset(backend, partial);
      const xOff = byteOffset(backend, x);
      for (let r0 = 0; r0 < rows; r0 += SIMD_ROW_BLOCK) {
        f32(backend, partial).fill(0);
        simd.colSum(pOff, xOff + r0 * inner * 4, Math.min(SIMD_ROW_BLOCK, rows - r0), inner);
        const p = f32(backend, partial);
        for (let c = 0; c < inner; c++) acc[c] += p[c]!;
      }
      release(backend, partial);
    } else {
      const xs = f32(backend, x);
      for (let r = 0, o = 0; r < rows; r++, o += inner) {
        for (let c = 0; c < inner; c++) acc[c] += xs[o + c]!;
      }
    }
    f32(backend, out).set(acc);
    return out;
  };
}

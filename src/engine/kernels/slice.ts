/**
 * Slice and SplitV for wasm, copying within the heap.
 *
 * The stock wasm Slice first copies the whole input out of the heap (`readSync`) on every call, and SplitV
 * calls it once per piece: the concat gradient of SegFormer's decoder ([2, 64, 64, 1024] into 4) took seconds.
 */

import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { WasmBackend } from './wasm-heap.ts';

function heapView(backend: WasmBackend, dtype: string): Int32Array | Uint8Array {
  // Int32 rather than Float32 views: copies stay bit-exact (NaN payloads included).
  return dtype === 'bool' ? backend.wasm.HEAPU8 : new Int32Array(backend.wasm.HEAPU8.buffer);
}

/** Copies x[begin : begin + size] into a new tensor, one memmove per contiguous run. */
export function sliceWasm(backend: WasmBackend, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  const total = tf.util.sizeFromShape(size);
  if (total === 0) return out;
  const rank = x.shape.length;
  const bytes = x.dtype === 'bool' ? 1 : 4;
  const heap = heapView(backend, x.dtype);
  const src0 = backend.dataIdMap.get(x.dataId).memoryOffset / bytes;
  const dst0 = backend.dataIdMap.get(out.dataId).memoryOffset / bytes;
  const strides = rank > 0 ? [...tf.util.computeStrides(x.shape), 1] : [1];
  // Axes after `k` are taken whole, so each index of axes 0..k-1 gives one contiguous run.
  let k = rank - 1;
  while (k > 0 && begin[k] === 0 && size[k] === x.shape[k]) k--;
  const run = rank === 0 ? 1 : size[k] * strides[k];
  const outer = rank === 0 ? 1 : total / run;
  const idx = new Array(Math.max(k, 0)).fill(0) as number[];
  let dst = dst0;
  for (let r = 0; r < outer; r++) {
    let src = src0;
    for (let d = 0; d < k; d++) src += (begin[d] + idx[d]) * strides[d];
    if (rank > 0) src += begin[k] * strides[k];
    heap.copyWithin(dst, src, src + run);
    dst += run;
    for (let d = k - 1; d >= 0; d--) {
      if (++idx[d] < size[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

export function sliceKernel(fallback: KernelFunc | undefined): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string' && fallback) return fallback(args);
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    return sliceWasm(args.backend as WasmBackend, x, b, s);
  };
}

export function splitVKernel(fallback: KernelFunc | undefined): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string' && fallback) return fallback(args);
    const { numOrSizeSplits, axis } = args.attrs as unknown as {
      numOrSizeSplits: number | number[];
      axis: number;
    };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
    const begin = new Array(x.shape.length).fill(0) as number[];
    return sizes.map((s) => {
      const size = [...x.shape];
      size[ax] = s;
      const piece = sliceWasm(args.backend as WasmBackend, x, begin, size);
      begin[ax] += s;
      return piece;
    });
  };
}

/**
 * DepthwiseConv2dNative and FusedDepthwiseConv2D for wasm in SegFormer's MixFFN case (3×3, stride 1, padding 1,
 * multiplier 1, channels a multiple of 4, no activation): simd.wat's nine-tap channel loop over each image
 * copied into a zero-bordered scratch. The stock XNNPACK kernel took 4.3 ms for [4, 64, 64, 128]; the input
 * gradient runs through this kernel too (the filter rotated, depthwise-backprop.ts). Other shapes go to the
 * stock kernel.
 */

import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { simdKernels } from './simd.ts';
import { byteOffset, f32, release, type WasmBackend } from './wasm-heap.ts';

interface DepthwiseAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: string;
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  activation?: string;
}

/** Whether the SIMD 3×3 path takes this call. */
function fits(x: TensorInfo, filter: TensorInfo, attrs: DepthwiseAttrs): boolean {
  if (x.dtype !== 'float32' || filter.dtype !== 'float32' || x.shape.length !== 4) return false;
  const [kh, kw, inC, mult] = filter.shape as number[];
  if (kh !== 3 || kw !== 3 || mult !== 1 || inC !== x.shape[3] || inC! % 4 !== 0) return false;
  if (attrs.dataFormat != null && attrs.dataFormat !== 'NHWC' && attrs.dataFormat !== 'channelsLast')
    return false;
  if (attrs.dilations != null && !tf.backend_util.tupleValuesAreOne(attrs.dilations)) return false;
  if (attrs.activation != null && attrs.activation !== 'linear') return false;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
  const p = info.padInfo;
  return (
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    p.top === 1 &&
    p.bottom === 1 &&
    p.left === 1 &&
    p.right === 1 &&
    info.outHeight === info.inHeight &&
    info.outWidth === info.inWidth
  );
}

function depthwise3x3(
  backend: WasmBackend,
  x: TensorInfo,
  filter: TensorInfo,
  bias?: TensorInfo,
): TensorInfo | null {
  const simd = simdKernels(backend);
  if (!simd) return null;
  const [batch, h, w, c] = x.shape as [number, number, number, number];
  const out = backend.makeOutput([batch, h, w, c], 'float32');
  const padded = backend.makeOutput([(h + 2) * (w + 2) * c], 'float32');
  const zeroBias = bias ? null : backend.makeOutput([c], 'float32');
  if (zeroBias) f32(backend, zeroBias).fill(0);
  const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
  const pOff = byteOffset(backend, padded);
  heap.fill(0, pOff / 4, pOff / 4 + (h + 2) * (w + 2) * c);
  const xOff = byteOffset(backend, x) / 4;
  const rowLen = w * c;
  for (let b = 0; b < batch; b++) {
    // Interior rows of the scratch; its zero border stays from the fill above.
    for (let r = 0; r < h; r++) {
      const src = xOff + (b * h + r) * rowLen;
      heap.copyWithin(pOff / 4 + ((r + 1) * (w + 2) + 1) * c, src, src + rowLen);
    }
    simd.depthwise3x3(
      byteOffset(backend, out) + b * h * rowLen * 4,
      pOff,
      byteOffset(backend, filter),
      byteOffset(backend, bias ?? zeroBias!),
      h,
      w,
      c,
    );
  }
  release(backend, padded, zeroBias ?? undefined);
  return out;
}

export function depthwiseConvKernel(fallback: KernelFunc | undefined): KernelFunc {
  return (args) => {
    if (!fallback) throw new Error('DepthwiseConv2dNative: no stock wasm kernel to fall back on');
    const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
    if (!fits(x, filter, args.attrs as unknown as DepthwiseAttrs)) return fallback(args);
    return depthwise3x3(args.backend as WasmBackend, x, filter) ?? fallback(args);
  };
}

export function fusedDepthwiseConvKernel(fallback: KernelFunc | undefined): KernelFunc {
  return (args) => {
    if (!fallback) throw new Error('FusedDepthwiseConv2D: no stock wasm kernel to fall back on');
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
    if (!x || !filter || preluActivationWeights) return fallback(args);
    const attrs = args.attrs as unknown as DepthwiseAttrs;
    if (!fits(x, filter, attrs)) return fallback(args);
    if (bias && (bias.dtype !== 'float32' || tf.util.sizeFromShape(bias.shape) !== x.shape[3]))
      return fallback(args);
    return depthwise3x3(args.backend as WasmBackend, x, filter, bias) ?? fallback(args);
  };
}

/**
 * Conv2D gradients for wasm (NHWC, filter [kh, kw, in, out]): im2col / col2im in JS around the XNNPACK product.
 *
 * dW = cols^T dY, where cols [b*oh*ow, kh*kw*in] holds the input patch under each output pixel;
 * dX = col2im(dY W^T). The stock wasm backend has no Conv2DBackpropFilter and a naive Conv2DBackpropInput.
 */

import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { matMulAtBSimd, wasmMatMul } from './matmul.ts';
import { type SimdKernels, simdKernels } from './simd.ts';
import { byteOffset, f32, matMulAt, release, reshaped, type WasmBackend } from './wasm-heap.ts';

type ConvInfo = tf.backend_util.Conv2DInfo;

interface Conv2DGradAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dilations?: number | [number, number];
}

export function assertSupported(kernel: string, dataFormat: string | undefined, dilations: unknown): void {
  if (dataFormat != null && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`${kernel} on wasm supports dataFormat NHWC only, got ${dataFormat}`);
  }
  if (dilations != null && !tf.backend_util.tupleValuesAreOne(dilations as number | [number, number])) {
    throw new Error(`${kernel} on wasm supports dilation 1 only, got ${JSON.stringify(dilations)}`);
  }
}

function convInfoOf(
  xShape: number[],
  filterShape: number[],
  attrs: Conv2DGradAttrs,
  depthwise: boolean,
): ConvInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    depthwise,
  );
}

/** Fills colsT [kh*kw*in, b*oh*ow] (the transposed im2col matrix) from x [b, h, w, in]. */
function im2colTransposed(x: Float32Array, colsT: Float32Array, c: ConvInfo): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth } = c;
  const { strideHeight: sh, strideWidth: sw } = c;
  const pt = c.padInfo.top;
  const pl = c.padInfo.left;
  const pixels = batchSize * outHeight * outWidth;
  const step = sw * inChannels;
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      // Output columns whose input column iw = ow*sw + kw - pl lies inside the image.
      const owStart = Math.max(0, Math.ceil((pl - kw) / sw));
      const owEnd = Math.min(outWidth, Math.floor((inWidth - 1 + pl - kw) / sw) + 1);
      for (let ci = 0; ci < inChannels; ci++) {
        const rowBase = ((kh * filterWidth + kw) * inChannels + ci) * pixels;
        for (let b = 0; b < batchSize; b++) {
          for (let oh = 0; oh < outHeight; oh++) {
            const dst = rowBase + (b * outHeight + oh) * outWidth;
            const ih = oh * sh + kh - pt;
            if (ih < 0 || ih >= inHeight || owStart >= owEnd) {
              colsT.fill(0, dst, dst + outWidth);
              continue;
            }
            if (owStart > 0) colsT.fill(0, dst, dst + owStart);
            if (owEnd < outWidth) colsT.fill(0, dst + owEnd, dst + outWidth);
            const src = (b * inHeight + ih) * inWidth * inChannels + ci + (kw - pl) * inChannels;
            for (let ow = owStart; ow < owEnd; ow++) colsT[dst + ow] = x[src + ow * step];
          }
        }
      }
    }
  }
}

/**
 * dx [b, h, w, in] += col2im(cols [b*oh*ow, kh*kw*in]); dx must start zeroed. For each output pixel and filter
 * row, the taps inside the image are one contiguous run of the input row (kw·in values), added in one loop.
 */
function col2im(cols: Float32Array, dx: Float32Array, c: ConvInfo): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth } = c;
  const { strideHeight: sh, strideWidth: sw } = c;
  const pt = c.padInfo.top;
  const pl = c.padInfo.left;
  const rowLen = filterHeight * filterWidth * inChannels;
  let p = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++, p++) {
        const iw0 = ow * sw - pl;
        const kw0 = Math.max(0, -iw0);
        const kw1 = Math.min(filterWidth, inWidth - iw0);
        if (kw1 <= kw0) continue;
        const run = (kw1 - kw0) * inChannels;
        for (let kh = 0; kh < filterHeight; kh++) {
          const ih = oh * sh + kh - pt;
          if (ih < 0 || ih >= inHeight) continue;
          const src = p * rowLen + (kh * filterWidth + kw0) * inChannels;
          const dst = ((b * inHeight + ih) * inWidth + iw0 + kw0) * inChannels;
          for (let i = 0; i < run; i++) dx[dst + i] += cols[src + i]!;
        }
      }
    }
  }
}

function isPointwise(c: ConvInfo): boolean {
  return (
    c.filterHeight === 1 &&
    c.filterWidth === 1 &&
    c.strideHeight === 1 &&
    c.strideWidth === 1 &&
    c.padInfo.top === 0 &&
    c.padInfo.left === 0 &&
    c.outHeight === c.inHeight &&
    c.outWidth === c.inWidth
  );
}

/**
 * Fills rows p0..p1 of the im2col matrix into cols [p1 − p0, patchPad] (row p: the input patch under output pixel
 * p, taps in (kh, kw, in) order, then zeros up to patchPad) from x [b, h, w, in]. For each filter row, the taps
 * inside the image are one contiguous run of the input row (kw·in values), copied in one loop.
 */
function im2colRows(
  x: Float32Array,
  cols: Float32Array,
  c: ConvInfo,
  patchPad: number,
  p0: number,
  p1: number,
): void {
  const { inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth } = c;
  const { strideHeight: sh, strideWidth: sw } = c;
  const pt = c.padInfo.top;
  const pl = c.padInfo.left;
  cols.fill(0, 0, (p1 - p0) * patchPad);
  for (let p = p0; p < p1; p++) {
    const ow = p % outWidth;
    const oh = Math.floor(p / outWidth) % outHeight;
    const b = Math.floor(p / (outWidth * outHeight));
    const row = (p - p0) * patchPad;
    const iw0 = ow * sw - pl;
    const kw0 = Math.max(0, -iw0);
    const kw1 = Math.min(filterWidth, inWidth - iw0);
    if (kw1 <= kw0) continue;
    const run = (kw1 - kw0) * inChannels;
    for (let kh = 0; kh < filterHeight; kh++) {
      const ih = oh * sh + kh - pt;
      if (ih < 0 || ih >= inHeight) continue;
      const src = ((b * inHeight + ih) * inWidth + iw0 + kw0) * inChannels;
      const dst = row + (kh * filterWidth + kw0) * inChannels;
      for (let i = 0; i < run; i++) cols[dst + i] = x[src + i]!;
    }
  }
}

/**
 * dW = colsᵀ dY with cols in natural [pixels, patch] order, through the SIMD Aᵀ·B tile loop (the patch padded to a
 * multiple of 4 with zero columns): XNNPACK's packed product runs these long-k (k = pixels) shapes at memory speed.
 * cols is built and multiplied in chunks of ~1 MB of pixels, accumulating into dW, so it is written and read
 * back from cache (the stage-1 patch embedding's full im2col is 16384 × 148 floats, 9.7 MB).
 */
function conv2DFilterGradSimd(
  backend: WasmBackend,
  simd: SimdKernels,
  x: TensorInfo,
  dy: TensorInfo,
  c: ConvInfo,
  filterShape: number[],
): TensorInfo {
  const pixels = c.batchSize * c.outHeight * c.outWidth;
  const patch = c.filterHeight * c.filterWidth * c.inChannels;
  const patchPad = Math.ceil(patch / 4) * 4;
  const n = c.outChannels;
  const chunk = Math.min(pixels, Math.max(64, Math.floor(262144 / patchPad)));
  const cols = backend.makeOutput([chunk, patchPad], 'float32');
  const product = backend.makeOutput([patchPad, n], 'float32');
  const dw = backend.makeOutput(filterShape, 'float32');
  f32(backend, product).fill(0);
  for (let p0 = 0; p0 < pixels; p0 += chunk) {
    const p1 = Math.min(pixels, p0 + chunk);
    im2colRows(f32(backend, x), f32(backend, cols), c, patchPad, p0, p1);
    matMulAtBSimd(
      backend,
      simd,
      byteOffset(backend, cols),
      byteOffset(backend, dy) + p0 * n * 4,
      byteOffset(backend, product),
      patchPad,
      p1 - p0,
      n,
      true,
    );
  }
  f32(backend, dw).set(f32(backend, product).subarray(0, patch * n));
  release(backend, cols, product);
  return dw;
}

export const conv2DBackpropFilterKernel: KernelFunc = (args) => {
  const backend = args.backend as WasmBackend;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as Conv2DGradAttrs & { filterShape: number[] };
  assertSupported('Conv2DBackpropFilter', attrs.dataFormat, attrs.dilations);
  const c = convInfoOf(x.shape, attrs.filterShape, attrs, false);
  const pixels = c.batchSize * c.outHeight * c.outWidth;
  const patch = c.filterHeight * c.filterWidth * c.inChannels;
  if (isPointwise(c)) {
    // cols is x itself: dW = x2d^T dY.
    const x2d = reshaped(backend, x, [pixels, c.inChannels]);
    const dy2d = reshaped(backend, dy, [pixels, c.outChannels]);
    const dw = wasmMatMul(backend, x2d, dy2d, true, false);
    release(backend, x2d, dy2d);
    dw.shape = attrs.filterShape;
    return dw;
  }
  const simd = c.outChannels % 8 === 0 ? simdKernels(backend) : null;
  if (simd) return conv2DFilterGradSimd(backend, simd, x, dy, c, attrs.filterShape);
  const colsT = backend.makeOutput([patch, pixels], 'float32');
  im2colTransposed(f32(backend, x), f32(backend, colsT), c);
  const dw = backend.makeOutput(attrs.filterShape, 'float32');
  matMulAt(
    backend,
    byteOffset(backend, colsT),
    byteOffset(backend, dy),
    byteOffset(backend, dw),
    patch,
    pixels,
    c.outChannels,
  );
  release(backend, colsT);
  return dw;
};

export const conv2DBackpropInputKernel: KernelFunc = (args) => {
  const backend = args.backend as WasmBackend;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as Conv2DGradAttrs & { inputShape: number[] };
  assertSupported('Conv2DBackpropInput', attrs.dataFormat, attrs.dilations);
  const c = convInfoOf(attrs.inputShape, filter.shape, attrs, false);
  const pixels = c.batchSize * c.outHeight * c.outWidth;
  const patch = c.filterHeight * c.filterWidth * c.inChannels;
  const dy2d = reshaped(backend, dy, [pixels, c.outChannels]);
  const w2d = reshaped(backend, filter, [patch, c.outChannels]);
  const cols = wasmMatMul(backend, dy2d, w2d, false, true);
  release(backend, dy2d, w2d);
  if (isPointwise(c)) {
    cols.shape = attrs.inputShape;
    return cols;
  }
  const dx = backend.makeOutput(attrs.inputShape, 'float32');
  const dxValues = f32(backend, dx);
  dxValues.fill(0);
  col2im(f32(backend, cols), dxValues, c);
  release(backend, cols);
  return dx;
};

/**
 * Depthwise conv2d gradients for wasm (NHWC, filter [kh, kw, in, multiplier], output channel = in * mult + m),
 * as tight typed-array loops over the heap: the channel loop is innermost and contiguous in x, dy and the filter.
 */

import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { assertSupported } from './conv2d-backprop.ts';
import { type SimdKernels, simdKernels } from './simd.ts';
import { byteOffset, f32, release, runWasmKernel, type WasmBackend } from './wasm-heap.ts';

interface DepthwiseGradAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dilations?: number | [number, number];
}

function depthwiseInfo(xShape: number[], filterShape: number[], attrs: DepthwiseGradAttrs) {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
}

/**
 * dW[kh, kw, ci, m] = sum over b, oh, ow of x[b, ih, iw, ci] * dy[b, oh, ow, ci*mult + m].
 *
 * With multiplier 1 and horizontal stride 1 (every SegFormer MixFFN conv), the x and dy runs under one tap and
 * one output row are contiguous over (ow, ci), so each tap accumulates one flat multiply-add loop into a
 * [outWidth * inChannels] row of accumulators, reduced over ow at the end: no index arithmetic in the inner
 * loop, ~10× the general loop below.
 */
export function depthwiseFilterGrad(
  x: Float32Array,
  dy: Float32Array,
  c: tf.backend_util.Conv2DInfo,
  mult: number,
): Float32Array {
  if (mult === 1 && c.strideWidth === 1) return depthwiseFilterGradRows(x, dy, c);
  return depthwiseFilterGradGeneral(x, dy, c, mult);
}

function depthwiseFilterGradRows(
  x: Float32Array,
  dy: Float32Array,
  c: tf.backend_util.Conv2DInfo,
): Float32Array {
  // Float64 accumulators: each weight sums batch*outHeight*outWidth products.
  const rowAcc = new Float64Array(c.filterHeight * c.filterWidth * c.outWidth * c.inChannels);
  forEachFilterGradSpan(c, (acc, xs, ds, len) => {
    for (let j = 0; j < len; j++) rowAcc[acc + j] += x[xs + j] * dy[ds + j];
  });
  return sumRowAccumulators(rowAcc, c);
}

/**
 * The spans of the flat-row filter gradient (multiplier 1, stride 1 across): for each batch, output row and filter
 * tap, the run of output columns whose input lies inside the image, as element offsets into the row accumulators
 * [taps, outWidth, ch], x and dy, and its length; the products over a span are x[xs+j]·dy[ds+j] into acc+j.
 */
function forEachFilterGradSpan(
  c: tf.backend_util.Conv2DInfo,
  visit: (acc: number, xs: number, ds: number, len: number) => void,
): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth } = c;
  const rowLen = outWidth * inChannels;
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const dyRow = (b * outHeight + oh) * rowLen;
      for (let kh = 0; kh < filterHeight; kh++) {
        const ih = oh * c.strideHeight + kh - c.padInfo.top;
        if (ih < 0 || ih >= inHeight) continue;
        const xRow = (b * inHeight + ih) * inWidth;
        for (let kw = 0; kw < filterWidth; kw++) {
          const owStart = Math.max(0, c.padInfo.left - kw);
          const owEnd = Math.min(outWidth, inWidth + c.padInfo.left - kw);
          if (owEnd <= owStart) continue;
          visit(
            (kh * filterWidth + kw) * rowLen + owStart * inChannels,
            (xRow + owStart + kw - c.padInfo.left) * inChannels,
            dyRow + owStart * inChannels,
            (owEnd - owStart) * inChannels,
          );
        }
      }
    }
  }
}

/** The row accumulators [taps, outWidth, ch] summed over outWidth (in float64) into the filter gradient [taps, ch]. */
function sumRowAccumulators(rows: ArrayLike<number>, c: tf.backend_util.Conv2DInfo): Float32Array {
  const { inChannels, outWidth } = c;
  const taps = c.filterHeight * c.filterWidth;
  const rowLen = outWidth * inChannels;
  const out = new Float32Array(taps * inChannels);
  for (let t = 0; t < taps; t++) {
    for (let ch = 0; ch < inChannels; ch++) {
      let s = 0;
      for (let ow = 0, o = t * rowLen + ch; ow < outWidth; ow++, o += inChannels) s += rows[o]!;
      out[t * inChannels + ch] = s;
    }
  }
  return out;
}

function depthwiseFilterGradGeneral(
  x: Float32Array,
  dy: Float32Array,
  c: tf.backend_util.Conv2DInfo,
  mult: number,
): Float32Array {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth } = c;
  const outChannels = inChannels * mult;
  const taps = filterHeight * filterWidth;
  // Float64 accumulators: each weight sums batch*outHeight*outWidth products.
  const acc = new Float64Array(taps * outChannels);
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      const accBase = (kh * filterWidth + kw) * outChannels;
      const owStart = Math.max(0, Math.ceil((c.padInfo.left - kw) / c.strideWidth));
      const owEnd = Math.min(outWidth, Math.floor((inWidth - 1 + c.padInfo.left - kw) / c.strideWidth) + 1);
      for (let b = 0; b < batchSize; b++) {
        for (let oh = 0; oh < outHeight; oh++) {
          const ih = oh * c.strideHeight + kh - c.padInfo.top;
          if (ih < 0 || ih >= inHeight) continue;
          const xRow = (b * inHeight + ih) * inWidth;
          const dyRow = (b * outHeight + oh) * outWidth;
          for (let ow = owStart; ow < owEnd; ow++) {
            const xBase = (xRow + ow * c.strideWidth + kw - c.padInfo.left) * inChannels;
            const dyBase = (dyRow + ow) * outChannels;
            if (mult === 1) {
              for (let ch = 0; ch < inChannels; ch++) acc[accBase + ch] += x[xBase + ch] * dy[dyBase + ch];
            } else {
              for (let ch = 0; ch < inChannels; ch++) {
                const xv = x[xBase + ch];
                const o = ch * mult;
                for (let m = 0; m < mult; m++) acc[accBase + o + m] += xv * dy[dyBase + o + m];
              }
            }
          }
        }
      }
    }
  }
  return Float32Array.from(acc);
}

/** dx[b, ih, iw, ci] = sum over taps and m of dy[b, oh, ow, ci*mult + m] * w[kh, kw, ci, m]; dx starts zeroed. */
export function depthwiseInputGrad(
  dy: Float32Array,
  w: Float32Array,
  dx: Float32Array,
  c: tf.backend_util.Conv2DInfo,
  mult: number,
): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth } = c;
  const outChannels = inChannels * mult;
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      const wBase = (kh * filterWidth + kw) * outChannels;
      const owStart = Math.max(0, Math.ceil((c.padInfo.left - kw) / c.strideWidth));
      const owEnd = Math.min(outWidth, Math.floor((inWidth - 1 + c.padInfo.left - kw) / c.strideWidth) + 1);
      for (let b = 0; b < batchSize; b++) {
        for (let oh = 0; oh < outHeight; oh++) {
          const ih = oh * c.strideHeight + kh - c.padInfo.top;
          if (ih < 0 || ih >= inHeight) continue;
          const xRow = (b * inHeight + ih) * inWidth;
          const dyRow = (b * outHeight + oh) * outWidth;
          for (let ow = owStart; ow < owEnd; ow++) {
            const xBase = (xRow + ow * c.strideWidth + kw - c.padInfo.left) * inChannels;
            const dyBase = (dyRow + ow) * outChannels;
            if (mult === 1) {
              for (let ch = 0; ch < inChannels; ch++) dx[xBase + ch] += dy[dyBase + ch] * w[wBase + ch];
            } else {
              for (let ch = 0; ch < inChannels; ch++) {
                const o = ch * mult;
                let s = 0;
                for (let m = 0; m < mult; m++) s += dy[dyBase + o + m] * w[wBase + o + m];
                dx[xBase + ch] += s;
              }
            }
          }
        }
      }
    }
  }
}

/**
 * With stride 1 and multiplier 1, dx is the depthwise correlation of dy with the filter rotated by 180° and the
 * complementary padding (kh-1-top, kh-1-bottom, …): run by the wasm backend's own XNNPACK depthwise conv.
 */
function depthwiseInputGradByConv(
  backend: WasmBackend,
  dy: TensorInfo,
  filter: TensorInfo,
  c: tf.backend_util.Conv2DInfo,
): TensorInfo {
  const { filterHeight: kh, filterWidth: kw, inChannels } = c;
  const rotated = backend.makeOutput(filter.shape, 'float32');
  const w = f32(backend, filter);
  const r = f32(backend, rotated);
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const src = ((kh - 1 - a) * kw + (kw - 1 - b)) * inChannels;
      r.set(w.subarray(src, src + inChannels), (a * kw + b) * inChannels);
    }
  }
  const p = c.padInfo;
  const dx = runWasmKernel(
    'DepthwiseConv2dNative',
    backend,
    { x: dy, filter: rotated },
    {
      strides: 1,
      dilations: 1,
      pad: [
        [0, 0],
        [kh - 1 - p.top, kh - 1 - p.bottom],
        [kw - 1 - p.left, kw - 1 - p.right],
        [0, 0],
      ],
    },
  );
  release(backend, rotated);
  return dx;
}

/**
 * The flat-row filter gradient with the multiply-adds in simd.wat: float32 row accumulators on the heap (each sums
 * batch·outHeight products), reduced over ow in float64.
 */
function depthwiseFilterGradSimd(
  backend: WasmBackend,
  simd: SimdKernels,
  x: TensorInfo,
  dy: TensorInfo,
  c: tf.backend_util.Conv2DInfo,
): Float32Array {
  const taps = c.filterHeight * c.filterWidth;
  const rowLen = c.outWidth * c.inChannels;
  const accT = backend.makeOutput([taps * rowLen], 'float32');
  f32(backend, accT).fill(0);
  const accOff = byteOffset(backend, accT);
  const xOff = byteOffset(backend, x);
  const dyOff = byteOffset(backend, dy);
  forEachFilterGradSpan(c, (acc, xs, ds, len) => {
    simd.mulAcc(accOff + acc * 4, xOff + xs * 4, dyOff + ds * 4, len);
    if (len % 4 !== 0) {
      const heap = backend.wasm.HEAPU8.buffer;
      const a = new Float32Array(heap, accOff, taps * rowLen);
      const xv = new Float32Array(
        heap,
        xOff,
        x.shape.reduce((p, q) => p * q, 1),
      );
      const dv = new Float32Array(
        heap,
        dyOff,
        dy.shape.reduce((p, q) => p * q, 1),
      );
      for (let j = len - (len % 4); j < len; j++) a[acc + j] += xv[xs + j]! * dv[ds + j]!;
    }
  });
  const out = sumRowAccumulators(f32(backend, accT), c);
  release(backend, accT);
  return out;
}

export const depthwiseBackpropFilterKernel: KernelFunc = (args) => {
  const backend = args.backend as WasmBackend;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as DepthwiseGradAttrs & { filterShape: number[] };
  assertSupported('DepthwiseConv2dNativeBackpropFilter', 'NHWC', attrs.dilations);
  const c = depthwiseInfo(x.shape, attrs.filterShape, attrs);
  const simd = attrs.filterShape[3] === 1 && c.strideWidth === 1 ? simdKernels(backend) : null;
  if (simd) {
    const grad = depthwiseFilterGradSimd(backend, simd, x, dy, c);
    const dw = backend.makeOutput(attrs.filterShape, 'float32');
    f32(backend, dw).set(grad);
    return dw;
  }
  const grad = depthwiseFilterGrad(f32(backend, x), f32(backend, dy), c, attrs.filterShape[3]);
  const dw = backend.makeOutput(attrs.filterShape, 'float32');
  f32(backend, dw).set(grad);
  return dw;
};

export const depthwiseBackpropInputKernel: KernelFunc = (args) => {
  const backend = args.backend as WasmBackend;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as DepthwiseGradAttrs & { inputShape: number[] };
  assertSupported('DepthwiseConv2dNativeBackpropInput', 'NHWC', attrs.dilations);
  const c = depthwiseInfo(attrs.inputShape, filter.shape, attrs);
  const p = c.padInfo;
  const fitsConv =
    c.strideHeight === 1 &&
    c.strideWidth === 1 &&
    filter.shape[3] === 1 &&
    Math.min(p.top, p.bottom) >= 0 &&
    Math.max(p.top, p.bottom) < c.filterHeight &&
    Math.min(p.left, p.right) >= 0 &&
    Math.max(p.left, p.right) < c.filterWidth;
  if (fitsConv) {
    return depthwiseInputGradByConv(backend, dy, filter, c);
  }
  const dx = backend.makeOutput(attrs.inputShape, 'float32');
  const dxValues = f32(backend, dx);
  dxValues.fill(0);
  depthwiseInputGrad(f32(backend, dy), f32(backend, filter), dxValues, c, filter.shape[3]);
  return dx;
};

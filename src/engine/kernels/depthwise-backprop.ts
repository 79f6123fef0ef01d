/**
 * Depthwise conv2d gradients for wasm (NHWC, filter [kh, kw, in, multiplier], output channel = in * mult + m),
 * as tight typed-array loops over the heap: the channel loop is innermost and contiguous in x, dy and the filter.
 */

import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { assertSupported } from './conv2d-backprop.ts';
import { f32, type WasmBackend } from './wasm-heap.ts';

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

/** dW[kh, kw, ci, m] = sum over b, oh, ow of x[b, ih, iw, ci] * dy[b, oh, ow, ci*mult + m]. */
export function depthwiseFilterGrad(
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

export const depthwiseBackpropFilterKernel: KernelFunc = (args) => {
  const backend = args.backend as WasmBackend;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as DepthwiseGradAttrs & { filterShape: number[] };
  assertSupported('DepthwiseConv2dNativeBackpropFilter', 'NHWC', attrs.dilations);
  const c = depthwiseInfo(x.shape, attrs.filterShape, attrs);
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
  const dx = backend.makeOutput(attrs.inputShape, 'float32');
  const dxValues = f32(backend, dx);
  dxValues.fill(0);
  depthwiseInputGrad(f32(backend, dy), f32(backend, filter), dxValues, c, filter.shape[3]);
  return dx;
};

/**
 * Kernels the wasm backend lacks or gets wrong but training needs; registered once by `ready()`.
 *
 * Added on wasm: Conv2DBackpropFilter, DepthwiseConv2dNativeBackpropFilter, DepthwiseConv2dNativeBackpropInput.
 * Replaced on wasm: Transpose (tiled heap copy for the axis swaps gradients need), Identity (shares storage instead of copying; the engine clones every tensor saved for a gradient).
 * Added on wasm and cpu: fused LayerNorm and GELU forward/backward kernels and tf.dropout's multipliers drawn into
 * the output (`FUSED_KERNELS`, used by SegFormer's ops), and a one-pass AdamW update (used by optim/adamw.ts).
 * Replaced on wasm, for speed: BatchMatMul and _FusedMatMul (XNNPACK for every shape), Conv2DBackpropInput
 * (col2im + XNNPACK), 3×3 stride-1 depthwise convolutions (SIMD), Sum over leading axes, Multiply/Add/Sub/RealDiv broadcast along a short last axis, ResizeBilinear, Slice and SplitV (heap memmove instead of a full copy of the input per
 * call). Replaced for correctness on wasm and cpu: ResizeBilinearGrad (halfPixelCenters, cpu output shape). `bench/probe-wasm-kernels.ts` lists what SegFormer's forward and backward need.
 */

import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { ADAMW, adamwSpec } from './adamw.ts';
import { broadcastBinaryKernel } from './broadcast-binary.ts';
import { conv2DBackpropFilterKernel, conv2DBackpropInputKernel } from './conv2d-backprop.ts';
import { depthwiseBackpropFilterKernel, depthwiseBackpropInputKernel } from './depthwise-backprop.ts';
import { depthwiseConvKernel, fusedDepthwiseConvKernel } from './depthwise-conv.ts';
import { DROPOUT_MULTIPLIERS, dropoutMultipliersSpec } from './dropout.ts';
import { GELU, GELU_GRAD, geluGradSpec, geluSpec } from './gelu.ts';
import { hostKernelConfigs } from './host-kernel.ts';
import { identityKernel } from './identity.ts';
import { LAYER_NORM, LAYER_NORM_GRAD, layerNormGradSpec, layerNormSpec } from './layer-norm.ts';
import { batchMatMulKernel, fusedMatMulKernel } from './matmul.ts';
import {
  resizeBilinearGradCpuKernel,
  resizeBilinearGradWasmKernel,
  resizeBilinearWasmKernel,
} from './resize-bilinear.ts';
import { sliceKernel, splitVKernel } from './slice.ts';
import { sumKernel } from './sum.ts';
import { transposeKernel } from './transpose.ts';

/** Names of the fused kernels slideseg adds on wasm and cpu (ops fall back to plain TF.js ops elsewhere). */
export const FUSED_KERNELS = {
  layerNorm: LAYER_NORM,
  layerNormGrad: LAYER_NORM_GRAD,
  gelu: GELU,
  geluGrad: GELU_GRAD,
  adamw: ADAMW,
  dropoutMultipliers: DROPOUT_MULTIPLIERS,
};

const stock = new Map<string, KernelConfig>();
const added: string[] = [];

/** `backend_kernel` names this module registered where tfjs had no kernel at all. */
export function addedKernels(): string[] {
  return [...added];
}

/** The kernel tfjs itself registered for `backend`, before our replacement (for benchmarks and fallbacks). */
export function stockKernel(kernelName: string, backend: 'wasm' | 'cpu'): KernelConfig | undefined {
  return stock.get(`${backend}_${kernelName}`);
}

function register(
  kernelName: string,
  backendName: 'wasm' | 'cpu',
  make: (fallback?: KernelFunc) => KernelFunc,
): void {
  const previous = tf.getKernel(kernelName, backendName);
  if (previous) {
    stock.set(`${backendName}_${kernelName}`, previous);
    tf.unregisterKernel(kernelName, backendName);
  } else {
    added.push(`${backendName}_${kernelName}`);
  }
  // Keep the stock setupFunc so a fallback to the stock kernel finds its wasm bindings initialised.
  tf.registerKernel({
    kernelName,
    backendName,
    kernelFunc: make(previous?.kernelFunc),
    setupFunc: previous?.setupFunc,
  });
}

let registered = false;

export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  register('Conv2DBackpropFilter', 'wasm', () => conv2DBackpropFilterKernel);
  register('Conv2DBackpropInput', 'wasm', () => conv2DBackpropInputKernel);
  register('DepthwiseConv2dNativeBackpropFilter', 'wasm', () => depthwiseBackpropFilterKernel);
  register('DepthwiseConv2dNativeBackpropInput', 'wasm', () => depthwiseBackpropInputKernel);
  register('DepthwiseConv2dNative', 'wasm', depthwiseConvKernel);
  register('FusedDepthwiseConv2D', 'wasm', fusedDepthwiseConvKernel);
  register('BatchMatMul', 'wasm', batchMatMulKernel);
  register('_FusedMatMul', 'wasm', fusedMatMulKernel);
  register('Identity', 'wasm', identityKernel);
  register('Sum', 'wasm', sumKernel);
  for (const op of ['Multiply', 'Add', 'Sub', 'RealDiv'] as const)
    register(op, 'wasm', broadcastBinaryKernel(op));
  register('Transpose', 'wasm', transposeKernel);
  register('Slice', 'wasm', sliceKernel);
  register('SplitV', 'wasm', splitVKernel);
  register('ResizeBilinear', 'wasm', () => resizeBilinearWasmKernel);
  register('ResizeBilinearGrad', 'wasm', () => resizeBilinearGradWasmKernel);
  register('ResizeBilinearGrad', 'cpu', () => resizeBilinearGradCpuKernel);
  for (const spec of [
    layerNormSpec,
    layerNormGradSpec,
    geluSpec,
    geluGradSpec,
    adamwSpec,
    dropoutMultipliersSpec,
  ]) {
    for (const config of hostKernelConfigs(spec)) {
      if (!tf.getKernel(config.kernelName, config.backendName)) tf.registerKernel(config);
    }
  }
}

/**
 * Copies between tensors and plain (or shared) Float32Arrays with one copy: on the wasm backend straight from and
 * to the heap; `dataSync()` first copies into a fresh array, which the caller then copies again (the gradient
 * threads exchange ~15 MB of weights and gradients per step for SegFormer-B0).
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { f32, type WasmBackend } from './kernels/wasm-heap.ts';
import { tf } from './tf.ts';

/** Writes the float32 values of `t` into `target` at `offset`. */
export function copyTensorInto(t: tf.Tensor, target: Float32Array, offset = 0): void {
  if (t.dtype !== 'float32') throw new Error(`copyTensorInto: float32 tensor expected, got ${t.dtype}`);
  if (tf.getBackend() === 'wasm') {
    // A view of the heap, used before anything else allocates (a heap growth would detach it).
    target.set(f32(tf.backend() as unknown as WasmBackend, t as unknown as TensorInfo), offset);
    return;
  }
  target.set(t.dataSync() as Float32Array, offset);
}

/**
 * Low-level access to the TF.js wasm backend from JS kernels: heap views, tensor ids that alias heap ranges,
 * and the backend's own XNNPACK matrix multiply (its fast path: one batch, no transposes), called on any
 * contiguous slices of wasm tensors.
 */
// The engine's own folder imports tfjs-core directly (same instance as engine/index.ts, no import cycle).

import type { TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';

/** The parts of `BackendWasm` these kernels use (the class is not exported with these members typed). */
export interface WasmBackend {
  wasm: {
    HEAPU8: Uint8Array;
    cwrap: (name: string, ret: null, args: string[]) => (...a: unknown[]) => void;
    tfjs: {
      registerTensor: (id: number, size: number, offset: number) => void;
      disposeData: (id: number) => void;
    };
  };
  dataIdNextNumber: number;
  dataIdMap: {
    get: (dataId: object) => { id: number; memoryOffset: number; shape: number[]; dtype: string };
  };
  makeOutput: (shape: number[], dtype: tf.DataType) => TensorInfo;
  disposeData: (dataId: object) => boolean;
}

/** A Float32Array view of a wasm tensor. Views die when the heap grows: take them after every allocation. */
export function f32(backend: WasmBackend, t: TensorInfo): Float32Array {
  const offset = backend.dataIdMap.get(t.dataId).memoryOffset;
  return new Float32Array(backend.wasm.HEAPU8.buffer, offset, tf.util.sizeFromShape(t.shape));
}

export function byteOffset(backend: WasmBackend, t: TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset;
}

export function release(backend: WasmBackend, ...ts: (TensorInfo | undefined)[]): void {
  for (const t of ts) if (t) backend.disposeData(t.dataId);
}

/** A TensorInfo sharing `t`'s storage under another shape (same element count); release it like any output. */
export function reshaped(backend: WasmBackend, t: TensorInfo, shape: number[]): TensorInfo {
  (backend as unknown as { incRef: (d: object) => void }).incRef(t.dataId);
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

type CMatMul = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: boolean,
  transposeB: boolean,
  outId: number,
) => void;

const cMatMulByModule = new WeakMap<object, CMatMul>();

function cMatMul(backend: WasmBackend): CMatMul {
  let fn = cMatMulByModule.get(backend.wasm);
  if (!fn) {
    fn = backend.wasm.cwrap('BatchMatMul', null, [
      'number',
      'array',
      'number',
      'number',
      'array',
      'number',
      'boolean',
      'boolean',
      'number',
    ]) as unknown as CMatMul;
    cMatMulByModule.set(backend.wasm, fn);
  }
  return fn;
}

const shapeBytes = (s: number[]) => new Uint8Array(new Int32Array(s).buffer);

/**
 * out[m, n] = sum_k a[m, k] * b[k, n] on heap byte offsets (row-major, float32), through XNNPACK.
 * The heap ranges get temporary tensor ids; disposing them also frees the XNNPACK operator cached on `b`.
 */
export function matMulAt(
  backend: WasmBackend,
  aOffset: number,
  bOffset: number,
  outOffset: number,
  m: number,
  k: number,
  n: number,
): void {
  if (m === 0 || n === 0) return;
  if (k === 0) {
    new Float32Array(backend.wasm.HEAPU8.buffer, outOffset, m * n).fill(0);
    return;
  }
  const { tfjs } = backend.wasm;
  const aId = backend.dataIdNextNumber++;
  const bId = backend.dataIdNextNumber++;
  const outId = backend.dataIdNextNumber++;
  tfjs.registerTensor(aId, m * k, aOffset);
  tfjs.registerTensor(bId, k * n, bOffset);
  tfjs.registerTensor(outId, m * n, outOffset);
  try {
    cMatMul(backend)(aId, shapeBytes([1, m, k]), 3, bId, shapeBytes([1, k, n]), 3, false, false, outId);
  } finally {
    tfjs.disposeData(aId);
    tfjs.disposeData(bId);
    tfjs.disposeData(outId);
  }
}

/** Runs another registered wasm kernel on TensorInfos (no tape, no engine bookkeeping). */
export function runWasmKernel(
  name: string,
  backend: WasmBackend,
  inputs: Record<string, TensorInfo>,
  attrs: Record<string, unknown> = {},
): TensorInfo {
  const kernel = tf.getKernel(name, 'wasm');
  if (!kernel) throw new Error(`wasm kernel ${name} is not registered`);
  return kernel.kernelFunc({ inputs, backend: backend as never, attrs: attrs as never }) as TensorInfo;
}

/** Transposes the last two axes of a [batch, rows, cols] tensor into a new tensor. */
export function transposeLast2(backend: WasmBackend, t: TensorInfo): TensorInfo {
  const [batch, rows, cols] = t.shape;
  if (rows === 1 || cols === 1) return reshaped(backend, t, [batch, cols, rows]);
  return runWasmKernel('Transpose', backend, { x: t }, { perm: [0, 2, 1] });
}

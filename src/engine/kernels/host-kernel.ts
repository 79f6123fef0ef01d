/**
 * Kernels written as plain loops over Float32Arrays, runnable on wasm (views of the heap) and cpu (the backend's
 * own arrays). Used for fused forward/backward kernels that replace chains of element-wise TF.js ops.
 */

import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { f32, type WasmBackend } from './wasm-heap.ts';

export interface HostKernelSpec {
  kernelName: string;
  /** Input names, in the order `compute` receives their values. */
  inputs: string[];
  /** Output shapes (float32) from the input shapes. */
  outShapes: (inputs: TensorInfo[], attrs: NamedAttrMap) => number[][];
  /** Fills `outputs` (zeroed) from `inputs`. */
  compute: (inputs: Float32Array[], outputs: Float32Array[], shapes: number[][], attrs: NamedAttrMap) => void;
  /** A faster wasm path on heap offsets (e.g. SIMD loops); returns false to use `compute`. */
  computeWasm?: (
    backend: WasmBackend,
    inputs: TensorInfo[],
    outputs: TensorInfo[],
    attrs: NamedAttrMap,
  ) => boolean;
}

interface CpuBackend {
  data: { get: (dataId: object) => { values: unknown } };
  makeTensorInfo: (shape: number[], dtype: tf.DataType, values: Float32Array) => TensorInfo;
}

function inputsOf(spec: HostKernelSpec, given: Record<string, TensorInfo | undefined>): TensorInfo[] {
  return spec.inputs.map((name) => {
    const t = given[name];
    if (!t) throw new Error(`${spec.kernelName}: missing input ${name}`);
    if (t.dtype !== 'float32') throw new Error(`${spec.kernelName}: input ${name} must be float32`);
    return t;
  });
}

function single(outs: TensorInfo[]): TensorInfo | TensorInfo[] {
  return outs.length === 1 ? outs[0]! : outs;
}

/** The wasm and cpu kernel configs of `spec`. */
export function hostKernelConfigs(spec: HostKernelSpec): KernelConfig[] {
  const wasm: KernelFunc = (args) => {
    const backend = args.backend as WasmBackend;
    const ins = inputsOf(spec, args.inputs as Record<string, TensorInfo>);
    const attrs = args.attrs ?? {};
    const outs = spec.outShapes(ins, attrs).map((s) => backend.makeOutput(s, 'float32'));
    if (spec.computeWasm?.(backend, ins, outs, attrs)) return single(outs);
    // Views after every allocation: growing the heap detaches older ones.
    const outValues = outs.map((o) => f32(backend, o));
    for (const v of outValues) v.fill(0);
    spec.compute(
      ins.map((t) => f32(backend, t)),
      outValues,
      ins.map((t) => t.shape),
      attrs,
    );
    return single(outs);
  };
  const cpu: KernelFunc = (args) => {
    const backend = args.backend as unknown as CpuBackend;
    const ins = inputsOf(spec, args.inputs as Record<string, TensorInfo>);
    const attrs = args.attrs ?? {};
    const shapes = spec.outShapes(ins, attrs);
    const outValues = shapes.map((s) => new Float32Array(tf.util.sizeFromShape(s)));
    spec.compute(
      ins.map((t) => backend.data.get(t.dataId).values as Float32Array),
      outValues,
      ins.map((t) => t.shape),
      attrs,
    );
    return single(shapes.map((s, i) => backend.makeTensorInfo(s, 'float32', outValues[i]!)));
  };
  return [
    { kernelName: spec.kernelName, backendName: 'wasm', kernelFunc: wasm },
    { kernelName: spec.kernelName, backendName: 'cpu', kernelFunc: cpu },
  ];
}

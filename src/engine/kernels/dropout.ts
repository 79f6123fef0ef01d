/**
 * Inverted dropout as one pass (wasm and cpu): y[i] = x[i]·(1/keep) where element i is kept, else 0. The keep
 * decision is a counter-based hash of (seed, i), so the mask needs no random stream, no mask tensor and no
 * state: the gradient is the same kernel applied to dy with the same seed. TF.js's `tf.dropout` draws the mask
 * element by element from a JavaScript generator (~30 ns per element: 120 ms for SegFormer-B0's classifier
 * dropout on a 4-crop shard at 256 px), then floors, divides and multiplies as four more passes.
 */

import type { NamedAttrMap } from '@tensorflow/tfjs-core';
import type { HostKernelSpec } from './host-kernel.ts';
import { simdKernels } from './simd.ts';
import { byteOffset, f32 } from './wasm-heap.ts';

export const DROPOUT = 'SlidesegDropout';

/** A 32-bit avalanche hash (Chris Wellons' lowbias32): every output bit depends on every input bit. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** What the kernel derives from its attributes: the mixed seed, the keep threshold on 24 bits, and 1/keep. */
export function dropoutParams(attrs: NamedAttrMap): { key: number; threshold: number; scale: number } {
  const rate = attrs.rate as number;
  const seed = attrs.seed as number;
  if (!(rate >= 0 && rate < 1)) throw new Error(`${DROPOUT}: rate must be in [0, 1), got ${rate}`);
  const keep = 1 - rate;
  // 1/keep in float32, as the SIMD loop multiplies: the JavaScript loop then rounds to the same products.
  return { key: mix32(seed >>> 0), threshold: Math.round(keep * 2 ** 24), scale: Math.fround(1 / keep) };
}

/** Whether element i is kept: the top 24 bits of mix32(i·φ + key) below the threshold. */
export function kept(i: number, key: number, threshold: number): boolean {
  return mix32((Math.imul(i, 0x9e3779b9) + key) >>> 0) >>> 8 < threshold;
}

function dropoutInto(x: Float32Array, y: Float32Array, attrs: NamedAttrMap, from: number): void {
  const { key, threshold, scale } = dropoutParams(attrs);
  const n = x.length;
  for (let i = from; i < n; i++) y[i] = kept(i, key, threshold) ? x[i]! * scale : 0;
}

/** Input x; attrs rate and seed (integers, the same seed giving the same mask). Output y, x's shape. */
export const dropoutSpec: HostKernelSpec = {
  kernelName: DROPOUT,
  inputs: ['x'],
  outShapes: ([x]) => [x!.shape],
  compute: ([x], [y], _shapes, attrs) => dropoutInto(x!, y!, attrs, 0),
  // On wasm, the SIMD loop of simd.wat does all but the last n % 4 elements (the same hash, four lanes at once).
  computeWasm: (backend, [x], [y], attrs) => {
    const simd = simdKernels(backend);
    if (!simd) return false;
    const { key, threshold, scale } = dropoutParams(attrs);
    const n = f32(backend, x!).length;
    simd.dropout(byteOffset(backend, y!), byteOffset(backend, x!), n, key, threshold, scale);
    dropoutInto(f32(backend, x!), f32(backend, y!), attrs, n - (n % 4));
    return true;
  },
};

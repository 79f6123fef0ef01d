/**
 * Transpose for wasm as a tiled copy over the heap. The stock kernel walks the output with per-element index
 * arithmetic, ~20× slower than this on the [rows, channels] → [channels, rows] transposes a backward pass makes for
 * every weight gradient (X^T dY). Permutations are first reduced to their essential form (size-1 axes dropped,
 * axes that stay adjacent merged); [R, C] → [C, R] and [B, R, C] → [B, C, R] are done here, anything else (e.g.
 * attention's head split [B, L, H, D] → [B, H, L, D], where the stock kernel moves whole runs) by the stock kernel.
 */

import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { byteOffset, reshaped, type WasmBackend } from './wasm-heap.ts';

/** The permutation with size-1 axes dropped and runs of input axes that stay adjacent merged. */
export function collapsePermutation(shape: number[], perm: number[]): { shape: number[]; perm: number[] } {
  const kept = shape.map((_, a) => a).filter((a) => shape[a] !== 1);
  const renumber = new Map(kept.map((a, i) => [a, i]));
  const p = perm.filter((a) => shape[a] !== 1).map((a) => renumber.get(a)!);
  const s = kept.map((a) => shape[a]!);
  // Groups of consecutive input axes, in output order.
  const groups: { start: number; end: number }[] = [];
  for (const a of p) {
    const last = groups[groups.length - 1];
    if (last && last.end === a) last.end = a + 1;
    else groups.push({ start: a, end: a + 1 });
  }
  const byInput = [...groups].sort((a, b) => a.start - b.start);
  return {
    shape: byInput.map((g) => s.slice(g.start, g.end).reduce((x, y) => x * y, 1)),
    perm: groups.map((g) => byInput.indexOf(g)),
  };
}

/** [B, R, C] → [B, C, R] as 32-bit words, tiled so that writes run along the output rows. */
function swapLast2(src: Int32Array, dst: Int32Array, b: number, r: number, c: number): void {
  const block = r * c;
  const T = 32;
  for (let n = 0; n < b; n++) {
    const base = n * block;
    for (let r0 = 0; r0 < r; r0 += T) {
      const r1 = Math.min(r, r0 + T);
      for (let c0 = 0; c0 < c; c0 += T) {
        const c1 = Math.min(c, c0 + T);
        for (let j = c0; j < c1; j++) {
          const out = base + j * r;
          for (let i = r0; i < r1; i++) dst[out + i] = src[base + i * c + j]!;
        }
      }
    }
  }
}

export function transposeKernel(fallback: KernelFunc | undefined): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { perm } = args.attrs as unknown as { perm: number[] };
    const backend = args.backend as WasmBackend;
    const outShape = perm.map((a) => x.shape[a]!);
    const bytes = x.dtype === 'float32' || x.dtype === 'int32' ? 4 : 0;
    const collapsed = collapsePermutation(x.shape, perm);
    const cp = collapsed.perm.join();
    const cs = collapsed.shape;
    if (bytes === 4 && collapsed.perm.length <= 1) return reshaped(backend, x, outShape);
    let dims: [number, number, number] | undefined;
    if (bytes === 4) {
      if (cp === '1,0') dims = [1, cs[0]!, cs[1]!];
      else if (cp === '0,2,1') dims = [cs[0]!, cs[1]!, cs[2]!];
    }
    if (!dims) {
      if (!fallback) throw new Error('Transpose: no stock wasm kernel to fall back on');
      return fallback(args);
    }
    const out = backend.makeOutput(outShape, x.dtype);
    const size = tf.util.sizeFromShape(x.shape);
    const heap = backend.wasm.HEAPU8.buffer;
    swapLast2(
      new Int32Array(heap, byteOffset(backend, x), size),
      new Int32Array(heap, byteOffset(backend, out), size),
      ...dims,
    );
    return out;
  };
}

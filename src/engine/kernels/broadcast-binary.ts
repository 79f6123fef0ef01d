/**
 * Multiply, Add, Sub and RealDiv for wasm where one operand is broadcast along a short last axis: [rows, c] with
 * [c] (per-class weights) or with [rows, 1] (per-pixel sums), c ≤ 8. The stock kernel walks such a broadcast
 * one row at a time, ~7 ns per element for c = 2 against ~0.2 ns for same-shape operands: the losses on a 2-class
 * 256×256 batch ([262144, 2]) spent ~30 ms per step there. Here the small operand is first repeated to the full
 * shape, then the stock kernel runs on two same-shape operands (the same arithmetic); every other shape goes to
 * the stock kernel directly.
 */

import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { f32, release, type WasmBackend } from './wasm-heap.ts';

type Op = 'Multiply' | 'Add' | 'Sub' | 'RealDiv';

/** The longest last axis the row loops take (wider rows: the stock kernel is fast). */
const MAX_INNER = 8;

/** How the smaller operand maps onto the full one: per column (one value per last-axis index) or per row. */
type Broadcast = 'perColumn' | 'perRow';

function broadcastKind(full: number[], small: number[]): Broadcast | null {
  const c = full[full.length - 1] ?? 1;
  if (full.length === 0 || c > MAX_INNER || small.length > full.length) return null;
  const padded = [...new Array(full.length - small.length).fill(1), ...small] as number[];
  if (padded.every((d, i) => (i === full.length - 1 ? d === c : d === 1))) return 'perColumn';
  if (c > 1 && padded[full.length - 1] === 1 && padded.slice(0, -1).every((d, i) => d === full[i])) {
    return 'perRow';
  }
  return null;
}

/** The small operand repeated to the full operand's [rows, c] layout. */
function expand(small: Float32Array, out: Float32Array, c: number, kind: Broadcast): void {
  const rows = out.length / c;
  if (kind === 'perColumn') {
    // One row, then the filled part copied onto the rest, doubling: log2(rows) memmoves.
    out.set(small.subarray(0, c), 0);
    for (let filled = c; filled < out.length; filled *= 2) {
      out.copyWithin(filled, 0, Math.min(filled, out.length - filled));
    }
    return;
  }
  // A plain element loop: a fill() call per row costs more than the row (c ≤ 8).
  for (let r = 0, o = 0; r < rows; r++) {
    const v = small[r]!;
    for (let j = 0; j < c; j++, o++) out[o] = v;
  }
}

export function broadcastBinaryKernel(op: Op) {
  return (fallback: KernelFunc | undefined): KernelFunc =>
    (args) => {
      if (!fallback) throw new Error(`${op}: no stock wasm kernel to fall back on`);
      const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
      if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback(args);
      const sizeA = tf.util.sizeFromShape(a.shape);
      const sizeB = tf.util.sizeFromShape(b.shape);
      if (sizeA === sizeB) return fallback(args);
      const [full, small, smallFirst] = sizeA > sizeB ? [a, b, false] : [b, a, true];
      const kind = broadcastKind(full.shape, small.shape);
      if (!kind) return fallback(args);
      const backend = args.backend as WasmBackend;
      const expanded = backend.makeOutput(full.shape, 'float32');
      expand(f32(backend, small), f32(backend, expanded), full.shape[full.shape.length - 1]!, kind);
      // The stock kernel on two same-shape operands (its fast path), in the original operand order.
      const inputs = smallFirst ? { a: expanded, b: full } : { a: full, b: expanded };
      const out = fallback({ ...args, inputs }) as TensorInfo;
      release(backend, expanded);
      return out;
    };
}

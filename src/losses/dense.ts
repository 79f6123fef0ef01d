/**
 * Host-side target encodings shared by the segmentation losses: the target as a dense [N*P, C] matrix
 * (one-hot for multiclass) with ignored pixels zeroed, and the matching validity mask.
 */
import type { Mode } from './types.ts';
import type { SegTarget } from './validate.ts';

export interface DenseTarget {
  /** [N*P*C] target in [0, 1], zero where ignored. */
  dense: Float32Array;
  /** [N*P*C] 1 where the element counts, 0 where its target equals ignoreIndex. */
  valid: Float32Array;
  /** Number of valid elements (pixels for multiclass, elements otherwise). */
  validCount: number;
}

export function denseTarget(seg: SegTarget, mode: Mode, ignoreIndex: number | undefined | null): DenseTarget {
  const { values, n, p, c } = seg;
  const rows = n * p;
  const dense = new Float32Array(rows * c);
  const valid = new Float32Array(rows * c);
  let validCount = 0;
  if (mode === 'multiclass') {
    for (let r = 0; r < rows; r++) {
      const v = values[r];
      if (ignoreIndex != null && v === ignoreIndex) continue;
      validCount++;
      dense[r * c + v] = 1;
      valid.fill(1, r * c, (r + 1) * c);
    }
  } else {
    for (let i = 0; i < rows * c; i++) {
      const v = values[i];
      if (ignoreIndex != null && v === ignoreIndex) continue;
      validCount++;
      dense[i] = v;
      valid[i] = 1;
    }
  }
  return { dense, valid, validCount };
}

/** Per-channel sums of a row-major [rows, c] array, in float64. */
export function channelSums(x: Float32Array, c: number): Float64Array {
  const sums = new Float64Array(c);
  for (let i = 0; i < x.length; i++) sums[i % c] += x[i];
  return sums;
}

/**
 * Segmentation scores derived from a confusion matrix (rows = target, columns = prediction), following
 * mmseg's IoUMetric: per-class values are null for a class absent from both prediction and target, and the
 * means (mIoU, mDice) average the non-null classes only. Ratios whose denominator is zero while the class
 * is present somewhere are 0, as scikit-learn's `zero_division=0`.
 */

export interface SegmentationMetrics {
  /** numClasses x numClasses counts, row-major: matrix[t][p] = pixels of target class t predicted as p. */
  matrix: number[][];
  iou: (number | null)[];
  dice: (number | null)[];
  precision: (number | null)[];
  recall: (number | null)[];
  /** Mean IoU over classes present in prediction or target; NaN when no pixel was counted. */
  mIoU: number;
  mDice: number;
  /** Overall pixel accuracy (trace / total); NaN when no pixel was counted. */
  aAcc: number;
  /** Matthews correlation coefficient (multiclass form of scikit-learn; equals the binary MCC for 2 classes). */
  mcc: number;
  /** Pixels counted (ignored pixels excluded). */
  pixels: number;
}

/** Computes every score from `counts`, a row-major numClasses² Float64Array (rows = target). */
export function metricsFromCounts(counts: Float64Array, numClasses: number): SegmentationMetrics {
  const C = numClasses;
  const targetTotal = new Float64Array(C);
  const predTotal = new Float64Array(C);
  let trace = 0;
  let total = 0;
  for (let t = 0; t < C; t++) {
    for (let p = 0; p < C; p++) {
      const n = counts[t * C + p]!;
      targetTotal[t] += n;
      predTotal[p] += n;
      total += n;
    }
    trace += counts[t * C + t]!;
  }
  const iou: (number | null)[] = [];
  const dice: (number | null)[] = [];
  const precision: (number | null)[] = [];
  const recall: (number | null)[] = [];
  for (let k = 0; k < C; k++) {
    const tp = counts[k * C + k]!;
    const fp = predTotal[k]! - tp;
    const fn = targetTotal[k]! - tp;
    if (targetTotal[k] === 0 && predTotal[k] === 0) {
      iou.push(null);
      dice.push(null);
      precision.push(null);
      recall.push(null);
      continue;
    }
    iou.push(tp / (tp + fp + fn));
    dice.push((2 * tp) / (2 * tp + fp + fn));
    precision.push(predTotal[k]! > 0 ? tp / predTotal[k]! : 0);
    recall.push(targetTotal[k]! > 0 ? tp / targetTotal[k]! : 0);
  }
  const matrix: number[][] = [];
  for (let t = 0; t < C; t++) matrix.push(Array.from(counts.subarray(t * C, (t + 1) * C)));
  return {
    matrix,
    iou,
    dice,
    precision,
    recall,
    mIoU: meanOfPresent(iou),
    mDice: meanOfPresent(dice),
    aAcc: total > 0 ? trace / total : Number.NaN,
    mcc: matthews(counts, C),
    pixels: total,
  };
}

/** Mean over non-null entries; NaN when all are null. */
export function meanOfPresent(values: (number | null)[]): number {
  let sum = 0;
  let n = 0;
  for (const v of values) {
    if (v != null) {
      sum += v;
      n++;
    }
  }
  return n > 0 ? sum / n : Number.NaN;
}

/**
 * Multiclass Matthews correlation coefficient (Gorodkin's R_K, scikit-learn's `matthews_corrcoef`):
 * (c·s − Σ t_k p_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)), 0 when either factor is 0.
 */
export function matthews(counts: Float64Array, C: number): number {
  let s = 0;
  let c = 0;
  let tp = 0;
  let pp = 0;
  let tt = 0;
  for (let k = 0; k < C; k++) {
    let t = 0;
    let p = 0;
    for (let j = 0; j < C; j++) {
      t += counts[k * C + j]!;
      p += counts[j * C + k]!;
    }
    s += t;
    c += counts[k * C + k]!;
    tp += t * p;
    pp += p * p;
    tt += t * t;
  }
  const cov = c * s - tp;
  const denom = (s * s - pp) * (s * s - tt);
  return denom === 0 ? 0 : cov / Math.sqrt(denom);
}

/**
 * Image-level classification scores, matching scikit-learn 1.2: accuracy, balanced accuracy, macro F1,
 * Matthews correlation and AUROC (binary: the class-1 score; multiclass: one-vs-rest macro average).
 */
import { tf } from '../engine/tf.ts';
import { binaryAuroc } from './auroc.ts';
import { checkClassIndex, flattenLabels, type LabelInput } from './labels.ts';
import { matthews } from './segmentation.ts';

export interface ClassificationMetrics {
  accuracy: number;
  /** Mean recall over the classes present in `labels` (sklearn `balanced_accuracy_score`). */
  balancedAccuracy: number;
  /** Mean F1 over the classes present in labels or predictions (sklearn `f1_score(average='macro')`). */
  macroF1: number;
  mcc: number;
  /** null where undefined: a class (binary: either class) has no positive or no negative sample. */
  auroc: number | null;
  /** Predicted class per sample (argmax of the scores; first maximum on ties, as numpy). */
  pred: number[];
  /** numClasses x numClasses counts, rows = label. */
  matrix: number[][];
}

/** Scores as [n, C] rows: a 2-D tensor, an array of rows, or flat row-major values with `numClasses`. */
export type ScoreInput = tf.Tensor | ArrayLike<number>[] | ArrayLike<number>;

function scoreRows(
  scores: ScoreInput,
  n: number,
  numClasses?: number,
): { flat: ArrayLike<number>; C: number } {
  if (scores instanceof tf.Tensor) {
    if (scores.rank !== 2)
      throw new RangeError(`scores: expected a [n, C] tensor, got shape [${scores.shape}]`);
    return { flat: scores.dataSync(), C: scores.shape[1]! };
  }
  const rows = scores as ArrayLike<unknown>;
  if (rows.length > 0 && typeof rows[0] === 'object') {
    const list = scores as ArrayLike<number>[];
    const C = list[0]!.length;
    const flat = new Float64Array(list.length * C);
    for (let i = 0; i < list.length; i++) {
      if (list[i]!.length !== C)
        throw new RangeError(`scores[${i}] has ${list[i]!.length} values, expected ${C}`);
      flat.set(list[i]!, i * C);
    }
    return { flat, C };
  }
  const flat = scores as ArrayLike<number>;
  const C = numClasses ?? flat.length / n;
  return { flat, C };
}

/**
 * @param labels true class per sample
 * @param scores per-class scores (probabilities or logits) per sample, [n, C]
 * @param numClasses only needed when `scores` is a flat array
 */
export function classificationMetrics(
  labels: LabelInput,
  scores: ScoreInput,
  numClasses?: number,
): ClassificationMetrics {
  const y = flattenLabels(labels, 'labels').values;
  const n = y.length;
  if (n === 0) throw new RangeError('classificationMetrics: no samples');
  const { flat, C } = scoreRows(scores, n, numClasses);
  if (!Number.isInteger(C) || C < 2 || flat.length !== n * C) {
    throw new RangeError(`classificationMetrics: ${flat.length} scores do not form [${n}, C >= 2] rows`);
  }
  const pred: number[] = [];
  const counts = new Float64Array(C * C);
  for (let i = 0; i < n; i++) {
    checkClassIndex(y[i]!, C, 'labels', i);
    let best = 0;
    for (let k = 1; k < C; k++) if (flat[i * C + k]! > flat[i * C + best]!) best = k;
    pred.push(best);
    counts[y[i]! * C + best]++;
  }

  let correct = 0;
  let recallSum = 0;
  let recallClasses = 0;
  let f1Sum = 0;
  let f1Classes = 0;
  for (let k = 0; k < C; k++) {
    let labelled = 0;
    let predicted = 0;
    for (let j = 0; j < C; j++) {
      labelled += counts[k * C + j]!;
      predicted += counts[j * C + k]!;
    }
    const tp = counts[k * C + k]!;
    correct += tp;
    if (labelled > 0) {
      recallSum += tp / labelled;
      recallClasses++;
    }
    if (labelled > 0 || predicted > 0) {
      f1Sum += (2 * tp) / (labelled + predicted);
      f1Classes++;
    }
  }

  let auroc: number | null;
  if (C === 2) {
    const positive = Array.from(y, (v) => v === 1);
    auroc = binaryAuroc(
      positive,
      Array.from({ length: n }, (_, i) => flat[i * 2 + 1]!),
    );
  } else {
    // One-vs-rest macro average; undefined (as sklearn raises) when any class lacks positives or negatives.
    let sum = 0;
    auroc = 0;
    for (let k = 0; k < C && auroc != null; k++) {
      const a = binaryAuroc(
        Array.from(y, (v) => v === k),
        Array.from({ length: n }, (_, i) => flat[i * C + k]!),
      );
      if (a == null) auroc = null;
      else sum += a;
    }
    if (auroc != null) auroc = sum / C;
  }

  const matrix: number[][] = [];
  for (let t = 0; t < C; t++) matrix.push(Array.from(counts.subarray(t * C, (t + 1) * C)));
  return {
    accuracy: correct / n,
    balancedAccuracy: recallSum / recallClasses,
    macroF1: f1Sum / f1Classes,
    mcc: matthews(counts, C),
    auroc,
    pred,
    matrix,
  };
}

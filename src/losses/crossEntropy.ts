/**
 * Softmax cross-entropy: PyTorch's `CrossEntropyLoss` and segmentation_models_pytorch's
 * `SoftCrossEntropyLoss` (fairseq-style label smoothing, mean over all pixels including ignored ones).
 */
import { tf } from '../engine/tf.ts';
import { zeroLoss } from './activation.ts';
import { denseTarget } from './dense.ts';
import type { LossFn, Reduction } from './types.ts';
import { checkNumber, checkPred, checkReduction, readSegTarget } from './validate.ts';

export interface SoftCEOptions {
  reduction?: Reduction;
  /** Label smoothing epsilon (0 or absent: none). */
  smoothFactor?: number | null;
  /** Class index whose pixels are left out (default -100). */
  ignoreIndex?: number | null;
}

export interface CrossEntropyOptions {
  /** Per-class weights, length C. */
  weight?: number[] | null;
  /** Class index whose pixels are left out (default -100). Index targets only. */
  ignoreIndex?: number | null;
  /** Mixes the target with the uniform distribution: `(1-s)*target + s/C`. */
  labelSmoothing?: number;
  reduction?: Reduction;
}

/** segmentation_models_pytorch `SoftCrossEntropyLoss`: pred [N,...,C] logits, target [N,...] int32. */
export function softCrossEntropyLoss(options: SoftCEOptions = {}): LossFn {
  const name = 'softCrossEntropyLoss';
  const reduction = checkReduction(name, options.reduction ?? 'mean');
  const epsilon = checkNumber(name, 'smoothFactor', options.smoothFactor ?? 0, 0, 1);
  const ignoreIndex = options.ignoreIndex === undefined ? -100 : options.ignoreIndex;
  return (pred, target) => {
    const seg = readSegTarget(name, 'multiclass', pred, target, ignoreIndex);
    const { c } = seg;
    const { dense, valid } = denseTarget(seg, 'multiclass', ignoreIndex);
    return tf.tidy(() => {
      const rows = pred.size / c;
      const logp = tf.logSoftmax(tf.reshape(pred, [rows, c]), -1);
      const nll = tf.neg(tf.sum(tf.mul(logp, tf.tensor2d(dense, [rows, c]))));
      const smoothTerm = tf.neg(tf.sum(tf.mul(logp, tf.tensor2d(valid, [rows, c]))));
      const total = tf.add(tf.mul(nll, 1 - epsilon), tf.mul(smoothTerm, epsilon / c));
      // The reference averages over every pixel, ignored ones included (their loss is 0).
      return (reduction === 'mean' ? tf.div(total, rows) : total) as tf.Scalar;
    });
  };
}

/**
 * PyTorch `CrossEntropyLoss` on channels-last logits [N,...,C]. Target: int32 class indices [N,...]
 * (weighted mean over non-ignored pixels), or float32 class probabilities [N,...,C] (mean over pixels).
 */
export function crossEntropyLoss(options: CrossEntropyOptions = {}): LossFn {
  const name = 'crossEntropyLoss';
  const reduction = checkReduction(name, options.reduction ?? 'mean');
  const smoothing = checkNumber(name, 'labelSmoothing', options.labelSmoothing ?? 0, 0, 1);
  const ignoreIndex = options.ignoreIndex === undefined ? -100 : options.ignoreIndex;
  const weight = options.weight ?? null;
  if (weight != null) for (const [i, w] of weight.entries()) checkNumber(name, `weight[${i}]`, w, 0);
  return (pred, target) => {
    checkPred(name, pred);
    const c = pred.shape[pred.rank - 1];
    if (weight != null && weight.length !== c) {
      throw new Error(`${name}: weight has ${weight.length} entries but pred has ${c} classes`);
    }
    const w = weight == null ? new Float32Array(c).fill(1) : Float32Array.from(weight);
    const rows = pred.size / c;
    const probabilityTarget = target?.rank === pred.rank && target.dtype === 'float32';
    const seg = readSegTarget(
      name,
      probabilityTarget ? 'multilabel' : 'multiclass',
      pred,
      target,
      ignoreIndex,
    );
    const { dense, valid } = probabilityTarget
      ? { dense: seg.values as Float32Array, valid: new Float32Array(rows * c).fill(1) }
      : denseTarget(seg, 'multiclass', ignoreIndex);
    // Denominator of the mean: sum of the target-class weights of valid pixels (index targets), pixel count otherwise.
    let denominator = rows;
    if (!probabilityTarget) {
      denominator = 0;
      for (let i = 0; i < dense.length; i++) denominator += dense[i] * w[i % c];
      if (denominator === 0) return zeroLoss(pred);
    }
    return tf.tidy(() => {
      const logp = tf.logSoftmax(tf.reshape(pred, [rows, c]), -1);
      const weighted = tf.mul(logp, tf.tensor1d(w));
      let t: tf.Tensor = tf.tensor2d(dense, [rows, c]);
      if (probabilityTarget && smoothing > 0) t = tf.add(tf.mul(t, 1 - smoothing), smoothing / c);
      let total = tf.neg(tf.sum(tf.mul(weighted, t)));
      if (!probabilityTarget && smoothing > 0) {
        const smoothTerm = tf.neg(tf.sum(tf.mul(weighted, tf.tensor2d(valid, [rows, c]))));
        total = tf.add(tf.mul(total, 1 - smoothing), tf.mul(smoothTerm, smoothing / c));
      }
      return (reduction === 'mean' ? tf.div(total, denominator) : total) as tf.Scalar;
    });
  };
}

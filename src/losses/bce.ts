/**
 * Binary cross-entropy on logits: PyTorch's `BCEWithLogitsLoss` and segmentation_models_pytorch's
 * `SoftBCEWithLogitsLoss` (label smoothing and an ignore value on top).
 */
import { tf } from '../engine/tf.ts';
import { denseTarget } from './dense.ts';
import type { LossFn, Reduction } from './types.ts';
import { checkNumber, checkReduction, readSegTarget } from './validate.ts';

export interface BCEOptions {
  /** Target value whose elements are left out; the mean is then over the remaining elements. */
  ignoreIndex?: number | null;
  /** Per-element rescaling: one number, or one per channel (channels-last). */
  weight?: number | number[] | null;
  /** Weight of positives: one number, or one per channel. */
  posWeight?: number | number[] | null;
  reduction?: Reduction;
}

export interface SoftBCEOptions extends BCEOptions {
  /** Target value whose elements are left out (their loss is zeroed; the mean still counts them, as in smp). */
  ignoreIndex?: number | null;
  /**
   * smp's `smooth_factor` s: targets become `t*(1-s) + (1-t)*s`, so 1 → 1-s and 0 → s (s = 0.1: 0.9 / 0.1).
   */
  smoothFactor?: number | null;
  /**
   * The Keras / Szegedy et al. parameterisation ε: targets become `t*(1-ε) + ε/2`, so 1 → 1-ε/2 and 0 → ε/2.
   * Equals `smoothFactor: ε/2`. Give one of the two.
   */
  labelSmoothing?: number | null;
}

function channelWeights(name: string, option: string, w: number | number[], c: number): tf.Tensor {
  if (typeof w === 'number') return tf.scalar(checkNumber(name, option, w));
  if (!Array.isArray(w) || w.length !== c) {
    throw new Error(
      `${name}: ${option} must be a number or ${c} numbers (one per channel), got ${JSON.stringify(w)}`,
    );
  }
  for (const [i, v] of w.entries()) checkNumber(name, `${option}[${i}]`, v);
  return tf.tensor1d(w);
}

function bceLoss(
  name: string,
  options: SoftBCEOptions,
  ignoreDefault: number | null,
  meanOverValid: boolean,
): LossFn {
  const reduction = checkReduction(name, options?.reduction ?? 'mean');
  const ignoreIndex = options?.ignoreIndex === undefined ? ignoreDefault : options.ignoreIndex;
  if (options?.smoothFactor != null && options?.labelSmoothing != null) {
    throw new Error(`${name}: give smoothFactor (smp) or labelSmoothing (= 2 × smoothFactor), not both`);
  }
  const smooth =
    options?.labelSmoothing != null
      ? checkNumber(name, 'labelSmoothing', options.labelSmoothing, 0, 1) / 2
      : options?.smoothFactor == null
        ? null
        : checkNumber(name, 'smoothFactor', options.smoothFactor, 0, 1);
  return (pred, target) => {
    const c = pred?.shape?.[pred.rank - 1] ?? 0;
    const mode = c === 1 ? 'binary' : 'multilabel';
    const seg = readSegTarget(name, mode, pred, target, ignoreIndex);
    const { dense, valid, validCount } = denseTarget(seg, mode, ignoreIndex);
    return tf.tidy(() => {
      const rows = pred.size / c;
      const x = tf.reshape(pred, [rows, c]);
      let t: tf.Tensor = tf.tensor2d(dense, [rows, c]);
      if (smooth != null) t = tf.add(tf.mul(tf.sub(1, t), smooth), tf.mul(t, 1 - smooth));
      // (1-t)*softplus(x) + posWeight*t*softplus(-x) equals PyTorch's formula and stays exact in both tails.
      let positive = tf.mul(t, tf.softplus(tf.neg(x)));
      if (options?.posWeight != null)
        positive = tf.mul(positive, channelWeights(name, 'posWeight', options.posWeight, c));
      let loss = tf.add(tf.mul(tf.sub(1, t), tf.softplus(x)), positive);
      if (options?.weight != null) loss = tf.mul(loss, channelWeights(name, 'weight', options.weight, c));
      if (ignoreIndex != null && validCount < rows * c) loss = tf.mul(loss, tf.tensor2d(valid, [rows, c]));
      const total = tf.sum(loss);
      const count = meanOverValid ? Math.max(validCount, 1) : rows * c;
      return (reduction === 'mean' ? tf.div(total, count) : total) as tf.Scalar;
    });
  };
}

/**
 * PyTorch `BCEWithLogitsLoss`: target the same shape as pred (or [N,...] for one channel), values in [0, 1].
 * With `ignoreIndex`, elements equal to it are left out and the mean is over the others.
 */
export function bceWithLogitsLoss(options: BCEOptions = {}): LossFn {
  return bceLoss('bceWithLogitsLoss', { ...options, smoothFactor: null, labelSmoothing: null }, null, true);
}

/** segmentation_models_pytorch `SoftBCEWithLogitsLoss` (ignoreIndex defaults to -100, as there). */
export function softBCEWithLogitsLoss(options: SoftBCEOptions = {}): LossFn {
  return bceLoss('softBCEWithLogitsLoss', options, -100, false);
}

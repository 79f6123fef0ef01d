/**
 * Matthews-correlation loss `1 - MCC` for binary segmentation on soft confusion counts.
 * - `variant: 'smp'` (default): segmentation_models_pytorch `MCCLoss`, eps added to each of TP, TN, FP, FN.
 * - `variant: 'paper'`: Abhishek & Hamarneh 2021 (kakumarabhishek/MCC-Loss), +1 added to the denominator.
 * Both sum the counts over the whole batch. pred is logits (sigmoid applied) unless `fromLogits: false`.
 */
import { tf } from '../engine/tf.ts';
import { denseTarget } from './dense.ts';
import type { LossFn } from './types.ts';
import { checkNumber, readSegTarget } from './validate.ts';

export interface MCCOptions {
  variant?: 'smp' | 'paper';
  /** Added to each soft count (smp variant). */
  eps?: number;
  /** pred holds logits (default) or probabilities. */
  fromLogits?: boolean;
  /** Target value whose pixels are left out of the counts. */
  ignoreIndex?: number | null;
}

/** Smallest value a denominator factor is clamped to, so sqrt never sees 0 (whose gradient is infinite). */
const TINY = 1e-30;

export function mccLoss(options: MCCOptions = {}): LossFn {
  const name = 'mccLoss';
  const variant = options.variant ?? 'smp';
  if (variant !== 'smp' && variant !== 'paper') {
    throw new Error(`${name}: variant must be 'smp' or 'paper', got ${JSON.stringify(variant)}`);
  }
  const eps = variant === 'smp' ? checkNumber(name, 'eps', options.eps ?? 1e-5, 0) : 0;
  const fromLogits = options.fromLogits ?? true;
  const ignoreIndex = options.ignoreIndex ?? null;
  return (pred, target) => {
    const seg = readSegTarget(name, 'binary', pred, target, ignoreIndex);
    const { dense, valid, validCount } = denseTarget(seg, 'binary', ignoreIndex);
    return tf.tidy(() => {
      let p = tf.reshape(fromLogits ? tf.sigmoid(pred) : pred, [-1]);
      // Ignored pixels count as neither positive nor negative: masked out of p and of 1 - p alike.
      const v = validCount < dense.length ? tf.tensor1d(valid) : null;
      if (v) p = tf.mul(p, v);
      const t = tf.tensor1d(dense);
      const notP = v ? tf.mul(tf.sub(1, p), v) : tf.sub(1, p);
      const notT = v ? tf.mul(tf.sub(1, t), v) : tf.sub(1, t);
      const tp = tf.add(tf.sum(tf.mul(p, t)), eps);
      const tn = tf.add(tf.sum(tf.mul(notP, notT)), eps);
      const fp = tf.add(tf.sum(tf.mul(p, notT)), eps);
      const fn = tf.add(tf.sum(tf.mul(notP, t)), eps);
      const numerator = tf.sub(tf.mul(tp, tn), tf.mul(fp, fn));
      // sqrt of each factor, multiplied: same value as sqrt of the product without overflowing float32 on big batches.
      const root = (a: tf.Tensor, b: tf.Tensor) => tf.sqrt(tf.maximum(tf.add(a, b), TINY));
      let denominator = tf.mul(tf.mul(root(tp, fp), root(tp, fn)), tf.mul(root(tn, fp), root(tn, fn)));
      if (variant === 'paper') denominator = tf.add(denominator, 1);
      return tf.sub(1, tf.div(numerator, denominator)) as tf.Scalar;
    });
  };
}

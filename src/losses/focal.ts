/**
 * Focal loss with segmentation_models_pytorch v0.5.0 semantics. Every channel is a sigmoid (binary) focal
 * problem, also in multiclass mode, where the per-class losses (each reduced on its own) are summed.
 */
import { tf } from '../engine/tf.ts';
import { zeroLoss } from './activation.ts';
import { denseTarget } from './dense.ts';
import type { LossFn, Mode, Reduction } from './types.ts';
import { checkMode, checkNumber, checkReduction, readSegTarget } from './validate.ts';

export interface FocalOptions {
  mode: Mode;
  /** Weight of positives (negatives get 1 - alpha); none by default. */
  alpha?: number | null;
  /** Focusing exponent. */
  gamma?: number;
  /** Target value whose pixels are left out. */
  ignoreIndex?: number | null;
  /** pred holds logits (default) or probabilities. */
  fromLogits?: boolean;
  /** Clamp applied to probabilities when `fromLogits` is false. */
  eps?: number;
  reduction?: Reduction;
  /** Divide by the sum of the focal terms (https://arxiv.org/abs/1909.07829). */
  normalized?: boolean;
  /** Reduced focal loss (https://arxiv.org/abs/1903.01347): focal term 1 where pt < threshold. */
  reducedThreshold?: number | null;
}

/** Stable `softplus(x) - x*t` (binary cross-entropy with logits), exact in the tails for hard targets. */
export function bceWithLogits(x: tf.Tensor, t: tf.Tensor): tf.Tensor {
  return tf.add(tf.mul(t, tf.softplus(tf.neg(x))), tf.mul(tf.sub(1, t), tf.softplus(x)));
}

function power(x: tf.Tensor, gamma: number): tf.Tensor {
  if (gamma === 0) return tf.onesLike(x);
  if (gamma === 1) return x;
  if (gamma === 2) return tf.square(x);
  return tf.pow(x, gamma);
}

export function focalLoss(options: FocalOptions): LossFn {
  const name = 'focalLoss';
  const mode = checkMode(name, options?.mode);
  const alpha = options.alpha == null ? null : checkNumber(name, 'alpha', options.alpha, 0, 1);
  const gamma = checkNumber(name, 'gamma', options.gamma ?? 2, 0);
  const ignoreIndex = options.ignoreIndex ?? null;
  const fromLogits = options.fromLogits ?? true;
  const eps = checkNumber(name, 'eps', options.eps ?? 1e-7, 0, 0.5);
  const reduction = checkReduction(name, options.reduction ?? 'mean');
  const normalized = options.normalized ?? false;
  const threshold =
    options.reducedThreshold == null
      ? null
      : checkNumber(name, 'reducedThreshold', options.reducedThreshold, 0, 1);
  if (threshold === 0) throw new Error(`${name}: reducedThreshold must be > 0`);

  return (pred, target) => {
    const seg = readSegTarget(name, mode, pred, target, ignoreIndex);
    const { c } = seg;
    const { dense, valid, validCount } = denseTarget(seg, mode, ignoreIndex);
    // Multiclass: each class is reduced over the valid pixels, then summed; otherwise all elements form one problem.
    const perClass = mode === 'multiclass';
    if (validCount === 0) return zeroLoss(pred);

    return tf.tidy(() => {
      const rows = pred.size / c;
      let x = tf.reshape(pred, [rows, c]);
      if (!fromLogits) {
        const p = tf.clipByValue(x, eps, 1 - eps);
        // Inverse sigmoid for sigmoid modes; log-probabilities for multiclass, as the reference does.
        x = mode === 'multiclass' ? tf.log(p) : tf.sub(tf.log(p), tf.log(tf.sub(1, p)));
      }
      const t = tf.tensor2d(dense, [rows, c]);
      const mask = tf.tensor2d(valid, [rows, c]);
      const logpt = bceWithLogits(x, t);
      const pt = tf.exp(tf.neg(logpt));
      const oneMinusPt = tf.neg(tf.expm1(tf.neg(logpt)));
      let focal: tf.Tensor;
      if (threshold == null) {
        focal = power(oneMinusPt, gamma);
      } else {
        // Where pt < threshold the focal term is the constant 1 (tf.step keeps the comparison differentiable).
        const below = tf.step(tf.sub(threshold, pt));
        focal = tf.add(below, tf.mul(tf.sub(1, below), power(tf.div(oneMinusPt, threshold), gamma)));
      }
      focal = tf.mul(focal, mask);
      let loss = tf.mul(focal, logpt);
      if (alpha != null) loss = tf.mul(loss, tf.add(tf.mul(t, alpha), tf.mul(tf.sub(1, t), 1 - alpha)));
      // Sum per class (multiclass) or over everything.
      let summed = perClass ? tf.sum(loss, 0) : tf.sum(loss);
      if (normalized) {
        const norm = perClass ? tf.sum(focal, 0) : tf.sum(focal);
        summed = tf.div(summed, tf.maximum(norm, 1e-6));
      }
      if (reduction === 'mean') summed = tf.div(summed, validCount);
      return tf.sum(summed) as tf.Scalar;
    });
  };
}

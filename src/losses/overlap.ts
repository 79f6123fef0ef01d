/**
 * Region-overlap losses (Dice, Jaccard, Tversky) with segmentation_models_pytorch v0.5.0 semantics:
 * soft scores per channel summed over batch and pixels, channels absent from the target contribute 0,
 * optional class subset, `-log(score)` or `1 - score`, and pixels equal to `ignoreIndex` left out.
 */
import { tf } from '../engine/tf.ts';
import { toProbabilities } from './activation.ts';
import { channelSums, denseTarget } from './dense.ts';
import type { LossFn, Mode } from './types.ts';
import { checkMode, checkNumber, readSegTarget } from './validate.ts';

export interface OverlapOptions {
  mode: Mode;
  /** Channels that contribute to the loss (default: all). Not allowed in binary mode. */
  classes?: number[];
  /** `-log(score)` instead of `1 - score`. */
  logLoss?: boolean;
  /** pred holds logits (default) or probabilities. */
  fromLogits?: boolean;
  /** Added to numerator and denominator. */
  smooth?: number;
  /** Target value whose pixels are left out. */
  ignoreIndex?: number | null;
  /** Lower bound of the denominator (and of the score under `logLoss`). */
  eps?: number;
}

export interface TverskyOptions extends OverlapOptions {
  /** Weight of false positives. */
  alpha?: number;
  /** Weight of false negatives. */
  beta?: number;
  /** Exponent applied to the mean loss. */
  gamma?: number;
}

/** Per-channel sums the scores are built from: TP, sum of predictions, sum of targets. */
interface OverlapSums {
  intersection: tf.Tensor1D;
  predSum: tf.Tensor1D;
  targetSum: Float64Array;
  fp: tf.Tensor1D;
  fn: tf.Tensor1D;
}

type ScoreFn = (s: OverlapSums, smooth: number, eps: number) => tf.Tensor1D;

const jaccardScore: ScoreFn = (s, smooth, eps) => {
  const cardinality = tf.add(s.predSum, tf.tensor1d(Float32Array.from(s.targetSum)));
  const union = tf.sub(cardinality, s.intersection);
  return tf.div(tf.add(s.intersection, smooth), tf.maximum(tf.add(union, smooth), eps));
};

const tverskyScore =
  (alpha: number, beta: number): ScoreFn =>
  (s, smooth, eps) => {
    const denominator = tf.add(
      tf.add(tf.add(s.intersection, tf.mul(s.fp, alpha)), tf.mul(s.fn, beta)),
      smooth,
    );
    return tf.div(tf.add(s.intersection, smooth), tf.maximum(denominator, eps));
  };

// smp v0.5.0 computes Dice as Tversky with alpha = beta = 0.5: (2I + 2*smooth) / (cardinality + 2*smooth).
const diceScore: ScoreFn = tverskyScore(0.5, 0.5);

function overlapLoss(name: string, options: OverlapOptions, score: ScoreFn, gamma: number): LossFn {
  const mode = checkMode(name, options?.mode);
  const fromLogits = options.fromLogits ?? true;
  const logLoss = options.logLoss ?? false;
  const smooth = checkNumber(name, 'smooth', options.smooth ?? 0, 0);
  const eps = checkNumber(name, 'eps', options.eps ?? 1e-7, 0);
  const ignoreIndex = options.ignoreIndex ?? null;
  const classes = options.classes;
  if (classes != null) {
    if (mode === 'binary') throw new Error(`${name}: classes cannot be used with mode 'binary'`);
    if (
      !Array.isArray(classes) ||
      classes.length === 0 ||
      !classes.every((k) => Number.isInteger(k) && k >= 0)
    ) {
      throw new Error(
        `${name}: classes must be a non-empty list of channel indices, got ${JSON.stringify(classes)}`,
      );
    }
  }

  return (pred, target) => {
    const seg = readSegTarget(name, mode, pred, target, ignoreIndex);
    const { c } = seg;
    if (classes?.some((k) => k >= c)) {
      throw new Error(`${name}: classes ${JSON.stringify(classes)} out of range for ${c} channels`);
    }
    const { dense, valid } = denseTarget(seg, mode, ignoreIndex);
    const targetSum = channelSums(dense, c);
    // Absent channels have an undefined score: their loss is zeroed, as in the reference.
    const present = Float32Array.from(targetSum, (s) => (s > 0 ? 1 : 0));
    // Mean over the selected channels (a channel listed twice counts twice), as weights to avoid a gather.
    const selection = new Float32Array(c);
    if (classes == null) selection.fill(1 / c);
    else for (const k of classes) selection[k] += 1 / classes.length;

    return tf.tidy(() => {
      const rows = pred.size / c;
      let probs = tf.reshape(toProbabilities(pred, mode, fromLogits), [rows, c]);
      const t = tf.tensor2d(dense, [rows, c]);
      if (ignoreIndex != null) probs = tf.mul(probs, tf.tensor2d(valid, [rows, c]));
      const intersection = tf.sum(tf.mul(probs, t), 0) as tf.Tensor1D;
      const sums: OverlapSums = {
        intersection,
        predSum: tf.sum(probs, 0) as tf.Tensor1D,
        targetSum,
        fp: tf.sum(tf.mul(probs, tf.sub(1, t)), 0) as tf.Tensor1D,
        fn: tf.sum(tf.mul(tf.sub(1, probs), t), 0) as tf.Tensor1D,
      };
      const scores = score(sums, smooth, eps);
      const perClass = logLoss ? tf.neg(tf.log(tf.maximum(scores, eps))) : tf.sub(1, scores);
      const mean = tf.sum(tf.mul(perClass, tf.tensor1d(present).mul(tf.tensor1d(selection))));
      return (gamma === 1 ? mean : tf.pow(mean, gamma)) as tf.Scalar;
    });
  };
}

/** Dice loss (segmentation_models_pytorch `DiceLoss`). */
export function diceLoss(options: OverlapOptions): LossFn {
  return overlapLoss('diceLoss', options, diceScore, 1);
}

/** Jaccard / IoU loss (segmentation_models_pytorch `JaccardLoss`). */
export function jaccardLoss(options: OverlapOptions): LossFn {
  return overlapLoss('jaccardLoss', options, jaccardScore, 1);
}

/** Tversky loss (segmentation_models_pytorch `TverskyLoss`): `mean(loss) ** gamma`. */
export function tverskyLoss(options: TverskyOptions): LossFn {
  const name = 'tverskyLoss';
  const alpha = checkNumber(name, 'alpha', options?.alpha ?? 0.5, 0);
  const beta = checkNumber(name, 'beta', options?.beta ?? 0.5, 0);
  const gamma = checkNumber(name, 'gamma', options?.gamma ?? 1, 0);
  return overlapLoss(name, options, tverskyScore(alpha, beta), gamma);
}

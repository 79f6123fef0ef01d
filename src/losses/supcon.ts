/**
 * Supervised contrastive loss (Khosla et al. 2020) with HobbitLong/SupContrast semantics; without labels it is
 * SimCLR's NT-Xent. `variant: 'out'` (the reference, and the paper's L_out) averages log-probabilities over the
 * positives; `variant: 'in'` (the paper's L_in) takes the log of the averaged probabilities.
 */
import { tf } from '../engine/tf.ts';
import { stopGradient } from './activation.ts';
import { checkNumber } from './validate.ts';

export interface SupConOptions {
  temperature?: number;
  baseTemperature?: number;
  /** Anchors: every view (`all`) or the first view of each sample (`one`). */
  contrastMode?: 'all' | 'one';
  variant?: 'out' | 'in';
}

export type SupConLossFn = (features: tf.Tensor, labels?: tf.Tensor | null) => tf.Scalar;

export function supConLoss(options: SupConOptions = {}): SupConLossFn {
  const name = 'supConLoss';
  const temperature = checkNumber(name, 'temperature', options.temperature ?? 0.07, Number.MIN_VALUE);
  const baseTemperature = checkNumber(
    name,
    'baseTemperature',
    options.baseTemperature ?? 0.07,
    Number.MIN_VALUE,
  );
  const contrastMode = options.contrastMode ?? 'all';
  if (contrastMode !== 'all' && contrastMode !== 'one') {
    throw new Error(`${name}: contrastMode must be 'all' or 'one', got ${JSON.stringify(contrastMode)}`);
  }
  const variant = options.variant ?? 'out';
  if (variant !== 'out' && variant !== 'in') {
    throw new Error(`${name}: variant must be 'out' or 'in', got ${JSON.stringify(variant)}`);
  }

  return (features, labels) => {
    if (features == null || typeof features.dataSync !== 'function')
      throw new Error(`${name}: features must be a tf.Tensor`);
    if (features.dtype !== 'float32')
      throw new Error(`${name}: features must be float32, got ${features.dtype}`);
    if (features.rank < 3) {
      throw new Error(
        `${name}: features must be [bsz, nViews, ...] (rank >= 3), got shape [${features.shape.join(',')}]`,
      );
    }
    const [bsz, views] = features.shape;
    if (bsz === 0 || views === 0 || features.size === 0) throw new Error(`${name}: features are empty`);
    // Sample i and j are positives when they share a label; without labels only views of the same sample are.
    let sampleLabels: ArrayLike<number>;
    if (labels == null) {
      sampleLabels = Int32Array.from({ length: bsz }, (_, i) => i);
    } else {
      if (typeof labels.dataSync !== 'function') throw new Error(`${name}: labels must be a tf.Tensor`);
      if (labels.size !== bsz || labels.rank !== 1) {
        throw new Error(
          `${name}: labels must have shape [${bsz}] (one per sample), got [${labels.shape.join(',')}]`,
        );
      }
      if (labels.dtype !== 'int32') throw new Error(`${name}: labels must be int32, got ${labels.dtype}`);
      sampleLabels = labels.dataSync() as Int32Array;
    }
    const anchors = contrastMode === 'all' ? bsz * views : bsz;
    const contrasts = bsz * views;
    // Row a (anchor a % bsz of view a / bsz) against column k (sample k % bsz): positive mask, self excluded.
    const positive = new Float32Array(anchors * contrasts);
    const notSelf = new Float32Array(anchors * contrasts).fill(1);
    const positiveCount = new Float32Array(anchors);
    for (let a = 0; a < anchors; a++) {
      notSelf[a * contrasts + a] = 0;
      for (let k = 0; k < contrasts; k++) {
        if (k !== a && sampleLabels[a % bsz] === sampleLabels[k % bsz]) {
          positive[a * contrasts + k] = 1;
          positiveCount[a]++;
        }
      }
    }
    return tf.tidy(() => {
      const flat = tf.reshape(features, [bsz, views, -1]);
      // View-major stacking, as torch.cat(torch.unbind(features, 1)).
      const contrast = tf.reshape(tf.transpose(flat, [1, 0, 2]), [contrasts, -1]);
      const anchor =
        contrastMode === 'all' ? contrast : tf.reshape(tf.slice(flat, [0, 0, 0], [bsz, 1, -1]), [bsz, -1]);
      const dots = tf.div(tf.matMul(anchor, contrast, false, true), temperature);
      const logits = tf.sub(dots, stopGradient(tf.max(dots, 1, true)));
      const mask = tf.tensor2d(notSelf, [anchors, contrasts]);
      const pos = tf.tensor2d(positive, [anchors, contrasts]);
      const logProb = tf.sub(logits, tf.log(tf.add(tf.sum(tf.mul(tf.exp(logits), mask), 1, true), 1e-9)));
      // Anchors without positives contribute 0 (as the reference's guarded denominator gives).
      const count = tf.tensor1d(positiveCount.map((v) => Math.max(v, 1)));
      let perAnchor: tf.Tensor;
      if (variant === 'out') {
        perAnchor = tf.div(tf.sum(tf.mul(pos, logProb), 1), count);
      } else {
        // log(mean over positives of exp(logProb)), shifted by the positives' max to stay finite.
        const masked = tf.add(logProb, tf.mul(tf.sub(1, pos), -1e30));
        const top = stopGradient(tf.max(masked, 1, true));
        const sumExp = tf.sum(tf.mul(tf.exp(tf.sub(masked, top)), pos), 1);
        const hasPositive = tf.tensor1d(positiveCount.map((v) => (v > 0 ? 1 : 0)));
        const logMean = tf.sub(
          tf.add(tf.log(tf.maximum(sumExp, 1e-30)), tf.reshape(top, [-1])),
          tf.log(count),
        );
        perAnchor = tf.mul(logMean, hasPositive);
      }
      return tf.mul(tf.mean(perAnchor), -(temperature / baseTemperature)) as tf.Scalar;
    });
  };
}

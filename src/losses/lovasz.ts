/**
 * Lovasz losses (Berman et al. 2018) with segmentation_models_pytorch v0.5.0 semantics:
 * hinge on logits for binary/multilabel (all channels form one binary problem), Lovasz-softmax over the
 * classes present in the target for multiclass; `perImage` averages per-image losses.
 *
 * The Lovasz extension is piecewise linear in the errors: within the current sort order,
 * loss = sum_i f(e_i) * G_i, where G is the Jaccard-loss increment at pixel i's rank. We sort on the host
 * (tf.topk), compute G there as a constant, and let TF.js differentiate `sum(f(errors) * G)`. This is the
 * reference's gradient (which flows through the sorted errors only) without a gather in the graph.
 */
import { tf } from '../engine/tf.ts';
import { toProbabilities } from './activation.ts';
import { denseTarget } from './dense.ts';
import type { LossFn, Mode } from './types.ts';
import { checkMode, readSegTarget } from './validate.ts';

export interface LovaszOptions {
  mode: Mode;
  /** Average per-image losses instead of one loss over the batch. */
  perImage?: boolean;
  /** Target value whose pixels are left out. */
  ignoreIndex?: number | null;
  /** pred holds logits (default) or probabilities. */
  fromLogits?: boolean;
}

/**
 * Writes `scale * grad` of the Lovasz extension into `out` for one group of errors.
 * `order` lists the group's element indices by decreasing error (ignored ones are skipped).
 */
function lovaszGradient(
  order: Int32Array,
  offset: number,
  stride: number,
  gt: Float32Array,
  valid: Float32Array,
  scale: number,
  out: Float32Array,
): void {
  let gts = 0;
  for (const k of order) {
    const i = offset + k * stride;
    if (valid[i]) gts += gt[i];
  }
  let cumFg = 0;
  let cumBg = 0;
  let previous = 0;
  for (const k of order) {
    const i = offset + k * stride;
    if (!valid[i]) continue;
    cumFg += gt[i];
    cumBg += 1 - gt[i];
    const jaccard = 1 - (gts - cumFg) / (gts + cumBg);
    out[i] = (jaccard - previous) * scale;
    previous = jaccard;
  }
}

/** Row-wise descending sort order of a [rows, cols] tensor. */
function sortOrder(x: tf.Tensor, rows: number, cols: number): Int32Array {
  return tf.tidy(() => tf.topk(tf.reshape(x, [rows, cols]), cols, true).indices.dataSync() as Int32Array);
}

export function lovaszLoss(options: LovaszOptions): LossFn {
  const name = 'lovaszLoss';
  const mode = checkMode(name, options?.mode);
  const perImage = options.perImage ?? false;
  const ignoreIndex = options.ignoreIndex ?? null;
  const fromLogits = options.fromLogits ?? true;

  return (pred, target) => {
    const seg = readSegTarget(name, mode, pred, target, ignoreIndex);
    const { n, p, c } = seg;
    const { dense, valid } = denseTarget(seg, mode, ignoreIndex);
    const rows = n * p;
    const groups = perImage ? n : 1;
    const groupSize = rows / groups;
    const weights = new Float32Array(rows * c);

    return tf.tidy(() => {
      if (mode === 'multiclass') {
        const probs = tf.reshape(toProbabilities(pred, mode, fromLogits), [rows, c]);
        const errors = tf.abs(tf.sub(tf.tensor2d(dense, [rows, c]), probs));
        // [C, rows] so each (class, group) is one contiguous row for topk.
        const order = sortOrder(tf.transpose(errors), c * groups, groupSize);
        for (let g = 0; g < groups; g++) {
          const present: number[] = [];
          for (let k = 0; k < c; k++) {
            let fg = 0;
            for (let r = g * groupSize; r < (g + 1) * groupSize && fg === 0; r++) fg += dense[r * c + k];
            if (fg > 0) present.push(k);
          }
          for (const k of present) {
            const row = order.subarray((k * groups + g) * groupSize, (k * groups + g + 1) * groupSize);
            lovaszGradient(
              row,
              g * groupSize * c + k,
              c,
              dense,
              valid,
              1 / (present.length * groups),
              weights,
            );
          }
        }
        return tf.sum(tf.mul(errors, tf.tensor2d(weights, [rows, c]))) as tf.Scalar;
      }
      // Binary / multilabel: hinge on logits, every element of a group in one sort.
      let logits = tf.reshape(pred, [rows * c]);
      if (!fromLogits) {
        const q = tf.clipByValue(logits, 1e-7, 1 - 1e-7);
        logits = tf.sub(tf.log(q), tf.log(tf.sub(1, q)));
      }
      const signs = tf.tensor1d(dense.map((v) => 2 * v - 1));
      const errors = tf.sub(1, tf.mul(logits, signs));
      const size = groupSize * c;
      const order = sortOrder(errors, groups, size);
      for (let g = 0; g < groups; g++) {
        lovaszGradient(
          order.subarray(g * size, (g + 1) * size),
          g * size,
          1,
          dense,
          valid,
          1 / groups,
          weights,
        );
      }
      return tf.sum(tf.mul(tf.relu(errors), tf.tensor1d(weights))) as tf.Scalar;
    });
  };
}

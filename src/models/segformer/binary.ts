/**
 * Binary (one-logit) SegFormers, as Hugging Face trains them with `num_labels: 1` (BCE with logits on the upsampled
 * logit z). Everything downstream of the model — probabilities, argmax labels, metrics, overlays — works on two
 * classes, so a one-logit output is presented as the two-class logits [logit(t), z]: their softmax is
 * [1 − σ(z), σ(z)] at the default threshold t = 0.5 (logit 0), and the argmax picks foreground exactly when
 * σ(z) > t. At another threshold the foreground probability becomes σ(z − logit t), which is > 0.5 exactly when
 * σ(z) > t.
 */
import { tf } from '../../engine/tf.ts';

/** The number of classes in label maps of a model with `numLabels` logits: 2 for a one-logit model. */
export function labelClasses(numLabels: number): number {
  return numLabels === 1 ? 2 : numLabels;
}

/** Checks a probability threshold and returns its logit (the background logit of the two-class form). */
export function thresholdLogit(threshold = 0.5): number {
  if (!(typeof threshold === 'number' && threshold > 0 && threshold < 1)) {
    throw new Error(`threshold must be a number in (0, 1), got ${JSON.stringify(threshold)}`);
  }
  return Math.log(threshold / (1 - threshold));
}

/** NHWC logits [N,h,w,1] → [N,h,w,2] = [logit(t), z]; logits with more channels are returned as they are. */
export function twoClassLogits(logits: tf.Tensor4D, threshold = 0.5): tf.Tensor4D {
  if (logits.shape[3] !== 1) return logits;
  const t = thresholdLogit(threshold);
  return tf.tidy(() => tf.concat([tf.fill(logits.shape, t), logits], 3)) as tf.Tensor4D;
}

/** The same for NCHW logits in a flat array (ONNX Runtime output): [n,1,h,w] → [n,2,h,w]. */
export function twoClassLogitsNCHW(
  data: Float32Array,
  n: number,
  plane: number,
  threshold = 0.5,
): Float32Array {
  const t = thresholdLogit(threshold);
  const out = new Float32Array(n * 2 * plane);
  for (let b = 0; b < n; b++) {
    out.fill(t, b * 2 * plane, (b * 2 + 1) * plane);
    out.set(data.subarray(b * plane, (b + 1) * plane), (b * 2 + 1) * plane);
  }
  return out;
}

/** Class names of the two-class form: background, then the model's one label. */
export function twoClassNames(foreground: string | undefined): string[] {
  return ['background', foreground ?? 'foreground'];
}

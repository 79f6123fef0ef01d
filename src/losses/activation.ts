/** Turning raw network outputs into probabilities, the way segmentation_models_pytorch does per mode. */
import { tf } from '../engine/tf.ts';
import type { Mode } from './types.ts';

/** Softmax over channels for multiclass, sigmoid otherwise; identity when the input already holds probabilities. */
export function toProbabilities(pred: tf.Tensor, mode: Mode, fromLogits: boolean): tf.Tensor {
  if (!fromLogits) return pred;
  return mode === 'multiclass' ? tf.softmax(pred, -1) : tf.sigmoid(pred);
}

/**
 * A copy of `x` that gradients do not flow through (TF.js has no stop_gradient op).
 * Used for shifts that cancel mathematically, like the row max subtracted before a softmax.
 */
const detached = tf.customGrad((...inputs) => ({
  value: (inputs[0] as tf.Tensor).clone(),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));

export function stopGradient(x: tf.Tensor): tf.Tensor {
  return detached(x);
}

/** `0 * sum(pred)`: a zero loss that still has a (zero) gradient path to pred. */
export function zeroLoss(pred: tf.Tensor): tf.Scalar {
  // `+ 0` turns the -0 of a negative sum into 0.
  return tf.add(tf.mul(tf.sum(pred), 0), 0) as tf.Scalar;
}

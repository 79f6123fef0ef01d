/** Weighted sums of losses, e.g. `combineLosses([[diceLoss({mode}), 1], [focalLoss({mode}), 0.5]])`. */
import { tf } from '../engine/tf.ts';
import type { LossFn } from './types.ts';

export function combineLosses(terms: Array<[LossFn, number]>): LossFn {
  if (!Array.isArray(terms) || terms.length === 0) {
    throw new Error('combineLosses: give at least one [loss, weight] pair');
  }
  terms.forEach(([loss, weight], i) => {
    if (typeof loss !== 'function') throw new Error(`combineLosses: term ${i} has no loss function`);
    if (typeof weight !== 'number' || !Number.isFinite(weight)) {
      throw new Error(`combineLosses: term ${i} has weight ${String(weight)}, expected a finite number`);
    }
  });
  return (pred, target) =>
    tf.tidy(() => tf.addN(terms.map(([loss, weight]) => tf.mul(loss(pred, target), weight))) as tf.Scalar);
}

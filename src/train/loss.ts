/**
 * Builds the training loss from config: a weighted sum of the losses module's factories, applied to
 * multiclass logits [N,H,W,C] and integer targets [N,H,W] with `ignoreIndex` honoured by every term.
 */
import type { tf } from '../engine/index.ts';
import {
  combineLosses,
  crossEntropyLoss,
  diceLoss,
  focalLoss,
  jaccardLoss,
  type LossFn,
  lovaszLoss,
  softCrossEntropyLoss,
  tverskyLoss,
} from '../losses/index.ts';
import type { LossSpec } from './config.ts';

const FACTORIES: Record<string, (o: Record<string, unknown>) => LossFn> = {
  ce: (o) => crossEntropyLoss(o),
  'cross-entropy': (o) => crossEntropyLoss(o),
  'soft-ce': (o) => softCrossEntropyLoss(o),
  dice: (o) => diceLoss({ mode: 'multiclass', ...o }),
  jaccard: (o) => jaccardLoss({ mode: 'multiclass', ...o }),
  tversky: (o) => tverskyLoss({ mode: 'multiclass', ...o }),
  focal: (o) => focalLoss({ mode: 'multiclass', ...o }),
  lovasz: (o) => lovaszLoss({ mode: 'multiclass', ...o }),
};

export function buildLoss(
  specs: LossSpec[],
  numLabels: number,
  ignoreIndex: number,
): (pred: tf.Tensor, target: tf.Tensor) => tf.Scalar {
  const terms: [LossFn, number][] = specs.map((spec) => {
    const { name, weight, ...options } = spec;
    const factory = FACTORIES[name];
    if (!factory) throw new Error(`unknown loss '${name}' (known: ${Object.keys(FACTORIES).join(', ')})`);
    return [factory({ ignoreIndex, ...options }), weight ?? 1];
  });
  void numLabels;
  return terms.length === 1 && terms[0]![1] === 1 ? terms[0]![0] : combineLosses(terms);
}

/** Shared types of the loss factories. */
import type { tf } from '../engine/tf.ts';

/** A differentiable loss: prediction (channels-last) and target in, scalar out. */
export type LossFn = (pred: tf.Tensor, target: tf.Tensor) => tf.Scalar;

/**
 * Segmentation mode, as in segmentation_models_pytorch:
 * - `binary`: pred [N,...,1], target [N,...,1] (or [N,...]) with values in [0, 1]
 * - `multiclass`: pred [N,...,C], target [N,...] int32 class indices
 * - `multilabel`: pred [N,...,C], target [N,...,C] with values in [0, 1]
 */
export type Mode = 'binary' | 'multiclass' | 'multilabel';

export const MODES: readonly Mode[] = ['binary', 'multiclass', 'multilabel'];

/** How per-element losses are reduced to a scalar. */
export type Reduction = 'mean' | 'sum';

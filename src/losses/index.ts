/**
 * Segmentation and contrastive losses for TF.js, channels-last, matching segmentation_models_pytorch v0.5.0,
 * PyTorch and HobbitLong/SupContrast. Each factory returns `(pred, target) => tf.Scalar`, differentiable in pred.
 */

export type { BCEOptions, SoftBCEOptions } from './bce.ts';
export { bceWithLogitsLoss, softBCEWithLogitsLoss } from './bce.ts';
export { combineLosses } from './combine.ts';
export type { CrossEntropyOptions, SoftCEOptions } from './crossEntropy.ts';
export { crossEntropyLoss, softCrossEntropyLoss } from './crossEntropy.ts';
export type { FocalOptions } from './focal.ts';
export { focalLoss } from './focal.ts';
export type { LovaszOptions } from './lovasz.ts';
export { lovaszLoss } from './lovasz.ts';
export type { MCCOptions } from './mcc.ts';
export { mccLoss } from './mcc.ts';
export type { OverlapOptions, TverskyOptions } from './overlap.ts';
export { diceLoss, jaccardLoss, tverskyLoss } from './overlap.ts';
export type { LossEntry, LossTerm, TrainingMode } from './registry.ts';
export { buildLoss, LOSSES, lossEntry, lossTableMarkdown, trainingMode } from './registry.ts';
export type { SupConLossFn, SupConOptions } from './supcon.ts';
export { supConLoss } from './supcon.ts';
export type { LossFn, Mode, Reduction } from './types.ts';

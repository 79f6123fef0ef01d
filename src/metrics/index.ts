export { binaryAuroc } from './auroc.ts';
export { type ClassificationMetrics, classificationMetrics, type ScoreInput } from './classification.ts';
export {
  ConfusionMatrix,
  type ConfusionMatrixOptions,
  type ConfusionResult,
  segmentationMetrics,
  type UpdateOptions,
} from './confusion.ts';
export type { LabelInput } from './labels.ts';
export { matthews, meanOfPresent, metricsFromCounts, type SegmentationMetrics } from './segmentation.ts';

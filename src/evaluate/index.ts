export { normalisationOf } from './normalisation.ts';
export { evaluationMarkdown } from './report.ts';
export {
  type ClassScores,
  type EvaluateOptions,
  type EvaluationResult,
  evaluate,
  type ImageScores,
  imageDice,
  matchImagesAndMasks,
} from './segmentation.ts';

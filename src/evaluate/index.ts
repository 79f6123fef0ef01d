export {
  type ClassificationDataset,
  csvDataset,
  datasetHash,
  folderDataset,
  loadClassificationDataset,
  readSample,
  type SampleRef,
  SPLITS,
  type Split,
} from './dataset.ts';
export { type CacheManifest, embedSplits, type SplitEmbeddings } from './embeddings.ts';
export { type ImageEncoder, mitEncoder, onnxEncoder, openEncoder, type Pooling } from './encoder.ts';
export {
  type EvalEncoderOptions,
  type EvalEncoderResults,
  evalEncoder,
  type Statistic,
  statistic,
} from './eva.ts';
export { evalEncoderSegmentation, type FrozenSegOptions, type FrozenSegResults } from './frozen-seg.ts';
export { normalisationOf } from './normalisation.ts';
export { type ProbeOptions, type ProbeRun, trainProbe } from './probe.ts';
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

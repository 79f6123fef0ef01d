/**
 * slideseg's public API: a curated list. Each capability is also a subpath export that loads only its own
 * dependencies (`slideseg/slide` reads slides without TF.js or ONNX Runtime; `slideseg/queue` is the only entry that
 * loads BullMQ/ioredis). The full surface of a capability is its subpath; this root names what most programs use.
 */

// Slides, annotations, patching
export {
  parseAperioXml,
  parseGeoJSON,
  rasterize,
  readAnnotations,
  toGeoJSON,
} from './annotations/index.ts';
export type * from './annotations/types.ts';
// Errors: every deliberate failure is a SlidesegError with a `code` and the original `cause`
export { isSlidesegError, SlidesegError } from './core/errors.ts';
export { tuneMalloc } from './core/malloc-tuning.ts';
// Engine
export { type BackendName, backendName, ready, tf } from './engine/index.ts';
// Evaluation
export { evalEncoder, evaluate, evaluationMarkdown } from './evaluate/index.ts';
export { readImageRGB } from './image/index.ts';
// Inference
export { inferSlide, slidingWindowProbabilities } from './infer/index.ts';
export { type PredictOptions, type PredictResult, predict } from './infer/predict.ts';
export { readNpy, readSafetensors, writeNpy, writeSafetensors } from './io/index.ts';
// Losses and metrics
export {
  bceWithLogitsLoss,
  combineLosses,
  crossEntropyLoss,
  diceLoss,
  focalLoss,
  jaccardLoss,
  lovaszLoss,
  mccLoss,
  softBCEWithLogitsLoss,
  softCrossEntropyLoss,
  supConLoss,
  tverskyLoss,
} from './losses/index.ts';
export { ConfusionMatrix, classificationMetrics, segmentationMetrics } from './metrics/index.ts';
// Models
export {
  loadSegformer,
  readSegformerConfig,
  Segformer,
  saveSegformer,
  segformerPreset,
} from './models/segformer/index.ts';
export { exportSegformerOnnx, OnnxSegmenter } from './onnx/index.ts';
export {
  createSampler,
  detectTissue,
  gridSampler,
  multiMagnificationSampler,
  openSlideByPath,
  patchStream,
  randomSampler,
} from './patching/index.ts';
export { openSlide, SlideError } from './slide/index.ts';
export type * from './slide/types.ts';
// Training
export { loadTrainConfig, pretrain, train } from './train/index.ts';

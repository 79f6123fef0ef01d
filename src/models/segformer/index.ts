export {
  labelClasses,
  thresholdLogit,
  twoClassLogits,
  twoClassLogitsNCHW,
  twoClassNames,
} from './binary.ts';
export type { LoadOptions, LoadReport } from './checkpoint.ts';
export {
  CONFIG_FILE,
  loadSegformer,
  saveSegformer,
  segformerStateDict,
  WEIGHTS_FILE,
  WEIGHTS_INDEX_FILE,
} from './checkpoint.ts';
export type { SegformerConfig, SegformerOverrides, SegformerPresetName } from './config.ts';
export {
  BATCH_NORM_EPS,
  LAYER_NORM_EPS,
  normalizeConfig,
  numLabels,
  segformerPreset,
} from './config.ts';
export { readSegformerConfig } from './config-file.ts';
export { copyEncoderWeights } from './encoder-weights.ts';
export type { SegformerForwardOptions, SegformerInit, SegformerOptions, SegformerOutput } from './model.ts';
export { Segformer } from './model.ts';
export type { ParamLayout, ParamSpec } from './params.ts';
export { segformerParamSpecs } from './params.ts';
export type { PreprocessorConfig } from './preprocessor.ts';
export {
  defaultPreprocessorConfig,
  loadPreprocessorConfig,
  trainingPreprocessorConfig,
} from './preprocessor.ts';
export { type SegformerTileModel, tileModelOf } from './tile-model.ts';

export {
  parseSegformerConfig,
  readSegformerCheckpoint,
  type SegformerArchitecture,
  type SegformerCheckpoint,
} from './checkpoint.ts';
export {
  buildSegformerOnnx,
  type ExportOptions,
  type ExportResult,
  exportSegformerOnnx,
} from './export-segformer.ts';
export {
  cudaProviderInstalled,
  type OnnxDevice,
  type OnnxLogits,
  OnnxSegmenter,
  type OnnxSegmenterOptions,
} from './runtime.ts';

/**
 * slideseg for browsers and bundlers (`import … from 'slideseg/browser'`): no Node built-ins. The TF.js engine
 * (`ready`, `tf`), the SegFormer model and its configs, every loss, the metrics, the safetensors format, and
 * SegFormer inference on ONNX Runtime Web, and whole-slide images (SVS, pyramidal TIFF, OME-TIFF) read over HTTP range
 * requests with OpenSlide's `read_region` semantics (`openSlideUrl`). Local files, OME-Zarr and checkpoints on disk
 * are Node's (`slideseg`).
 */
export { type BrowserReadyOptions, ready, tf } from './engine/browser.ts';
export { parseSafetensors, serializeSafetensors, toFloat32 } from './io/safetensors.ts';
export * from './losses/index.ts';
export * from './metrics/index.ts';
export {
  normalizeConfig,
  numLabels,
  type SegformerConfig,
  segformerPreset,
} from './models/segformer/config.ts';
export { Segformer, type SegformerOutput } from './models/segformer/model.ts';
export { segformerParamSpecs } from './models/segformer/params.ts';
export { OnnxWebSegmenter, type WebSegmenterOptions } from './onnx/web.ts';
export { FetchByteSource, type FetchOptions } from './slide/browser/fetch-source.ts';
export { type OpenSlideUrlOptions, openSlideUrl } from './slide/browser/open.ts';
export type { RGBAImage, Slide, SlideLevel } from './slide/types.ts';

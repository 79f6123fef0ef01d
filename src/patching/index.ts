export { type AugmentOptions, augment, rgbToHed, type Sample } from './augment.ts';
export { TissueCoverage } from './coverage.ts';
export {
  bestLevelForDownsample,
  type ImageSlideOptions,
  imageSlide,
  openImageAsSlide,
} from './image-slide.ts';
export { fractionOf, listPairs, loadPair, type NamedSample, splitNames } from './pairs.ts';
export { writeContactSheet, writeMaskPng, writePatchOverview, writeTissueOverlayPng } from './preview.ts';
export { createRng, mixSeed, type Rng } from './random.ts';
export {
  createSampler,
  type ForegroundOptions,
  type ForegroundRandomOptions,
  foregroundGridSampler,
  foregroundRandomSampler,
  type GridOptions,
  gridSampler,
  type MultiMagnificationOptions,
  multiMagnificationSampler,
  type PatchSize,
  type PatchSpec,
  type Resolution,
  randomSampler,
  resolveResolution,
  type Sampler,
  type SamplerContext,
  type SamplerName,
  type SlideGeometry,
} from './samplers.ts';
export {
  type LabelledPatch,
  labelledPatches,
  readSlideDataset,
  type SlideDataset,
  type SlideEntry,
  slideDatasetFrom,
  slideName,
  splitSlides,
} from './slide-dataset.ts';
export {
  openSlideByPath,
  type Patch,
  type PatchStreamOptions,
  patchStream,
  readPatch,
  rgbaToRgbOnWhite,
} from './stream.ts';
export {
  detectTissue,
  detectTissueInImage,
  detectTissueWithView,
  lowResolutionView,
  medianFilter,
  otsuThreshold,
  saturation,
  type TissueMask,
  type TissueOptions,
  tissueFraction,
} from './tissue.ts';

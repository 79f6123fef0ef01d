export {
  type ImagePreprocessing,
  type PixelValues,
  preprocessImage,
  readImagePreprocessing,
  resizeTarget,
} from './preprocess.ts';
export {
  type DecodedImage,
  decodeImageRGB,
  ImageTooLargeError,
  type ReadImageOptions,
  type RGBImage,
  readImageRGB,
} from './read.ts';

export { type ByteSource, FileByteSource, HttpByteSource, type HttpOptions } from './bytesource.ts';
export { BlockCache, sharedBlockCache } from './cache.ts';
export { SlideError } from './errors.ts';
export { type OpenSlideOptions, openSlide } from './open.ts';
export { MAX_REGION_PIXELS, PyramidSlide } from './pyramid.ts';
export { openTiffSource } from './tiff/open.ts';
export { TiffPyramidSource } from './tiff/source.ts';
export * from './types.ts';
export { FolderStore, type OmeZarrOptions, openOmeZarr } from './zarr/index.ts';

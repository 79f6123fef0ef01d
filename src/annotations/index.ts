export { MAX_VERTICES, parseAperioXml } from './aperio.ts';
export { AnnotationError } from './errors.ts';
export { type GeoJSONWriteOptions, parseGeoJSON, toGeoJSON } from './geojson.ts';
export { pointInRing, signedArea2 } from './geometry.ts';
export { type RasterRegion, rasterize } from './rasterize.ts';
export { MAX_ANNOTATION_BYTES, type ReadAnnotationsOptions, readAnnotations } from './read.ts';
export type { AnnotationPolygon, AnnotationSet, Ring } from './types.ts';

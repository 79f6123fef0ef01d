export { parseAperioXml } from './aperio.ts';
export { type GeoJSONWriteOptions, parseGeoJSON, toGeoJSON } from './geojson.ts';
export { pointInRing, signedArea2 } from './geometry.ts';
export { type RasterRegion, rasterize } from './rasterize.ts';
export { readAnnotations } from './read.ts';
export type { AnnotationPolygon, AnnotationSet, Ring } from './types.ts';

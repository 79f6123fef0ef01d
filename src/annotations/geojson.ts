/**
 * GeoJSON annotations as QuPath exports and imports them: a FeatureCollection (or one Feature, a bare geometry, or an
 * array of Features) of Polygon / MultiPolygon geometries in level-0 pixels, the class in
 * properties.classification.name. Points and lines have no area and are skipped.
 */
import { AnnotationError } from './errors.ts';
import { openRing, signedArea2 } from './geometry.ts';
import type { AnnotationPolygon, AnnotationSet, Ring } from './types.ts';

type Json = Record<string, unknown>;

const DEFAULT_LABEL = 'annotation';
/** Deepest nesting of arrays / GeometryCollections accepted (real files nest 2-3 levels). */
export const MAX_GEOJSON_DEPTH = 64;
/** Most vertices one file may hold (as for Aperio XML). */
const MAX_GEOJSON_VERTICES = 5_000_000;

interface Walk {
  source: string;
  vertices: number;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function labelOf(properties: unknown): string {
  if (!isObject(properties)) return DEFAULT_LABEL;
  const c = properties['classification'];
  if (isObject(c) && typeof c['name'] === 'string' && c['name']) return c['name'];
  if (typeof c === 'string' && c) return c;
  for (const key of ['name', 'label', 'class']) {
    const v = properties[key];
    if (typeof v === 'string' && v) return v;
  }
  return DEFAULT_LABEL;
}

function toRing(coords: unknown, where: string, walk: Walk): Ring {
  if (!Array.isArray(coords)) throw new AnnotationError(`${where}: ring is not an array of positions`);
  walk.vertices += coords.length;
  if (walk.vertices > MAX_GEOJSON_VERTICES)
    throw new AnnotationError(
      `${walk.source}: more than ${MAX_GEOJSON_VERTICES} vertices (limit for one annotation file)`,
    );
  const ring: Ring = [];
  for (const p of coords) {
    if (!Array.isArray(p) || p.length < 2 || !Number.isFinite(p[0]) || !Number.isFinite(p[1])) {
      throw new AnnotationError(`${where}: invalid position ${JSON.stringify(p)?.slice(0, 80)}`);
    }
    ring.push([p[0] as number, p[1] as number]);
  }
  return openRing(ring);
}

function polygonFrom(coords: unknown, label: string, where: string, walk: Walk): AnnotationPolygon | null {
  if (!Array.isArray(coords))
    throw new AnnotationError(`${where}: Polygon coordinates must be an array of rings`);
  const rings = coords.map((r) => toRing(r, where, walk)).filter((r) => r.length >= 3);
  return rings.length > 0 ? { label, rings } : null;
}

function collect(
  node: unknown,
  label: string,
  out: AnnotationPolygon[],
  where: string,
  walk: Walk,
  depth = 0,
): void {
  if (depth > MAX_GEOJSON_DEPTH)
    throw new AnnotationError(`${walk.source}: GeoJSON nested deeper than ${MAX_GEOJSON_DEPTH} levels`);
  const next = depth + 1;
  if (Array.isArray(node)) {
    for (const [i, n] of node.entries()) collect(n, label, out, `${where}[${i}]`, walk, next);
    return;
  }
  if (!isObject(node)) throw new AnnotationError(`${where}: expected a GeoJSON object`);
  switch (node['type']) {
    case 'FeatureCollection': {
      const features = node['features'];
      if (!Array.isArray(features))
        throw new AnnotationError(`${where}: FeatureCollection without a features array`);
      for (const [i, f] of features.entries()) collect(f, label, out, `${where}.features[${i}]`, walk, next);
      return;
    }
    case 'Feature':
      if (node['geometry'] != null)
        collect(node['geometry'], labelOf(node['properties']), out, `${where}.geometry`, walk, next);
      return;
    case 'GeometryCollection': {
      const geometries = node['geometries'];
      if (!Array.isArray(geometries))
        throw new AnnotationError(`${where}: GeometryCollection without geometries`);
      for (const [i, g] of geometries.entries())
        collect(g, label, out, `${where}.geometries[${i}]`, walk, next);
      return;
    }
    case 'Polygon': {
      const p = polygonFrom(node['coordinates'], label, where, walk);
      if (p) out.push(p);
      return;
    }
    case 'MultiPolygon': {
      const polys = node['coordinates'];
      if (!Array.isArray(polys))
        throw new AnnotationError(`${where}: MultiPolygon coordinates must be an array of polygons`);
      for (const coords of polys) {
        const p = polygonFrom(coords, label, where, walk);
        if (p) out.push(p);
      }
      return;
    }
    case 'Point':
    case 'MultiPoint':
    case 'LineString':
    case 'MultiLineString':
      return;
    default:
      throw new AnnotationError(
        `${where}: unknown GeoJSON type ${JSON.stringify(node['type'])?.slice(0, 80)}`,
      );
  }
}

export function parseGeoJSON(input: string | unknown, source = '<geojson>'): AnnotationSet {
  let doc: unknown = input;
  if (typeof input === 'string') {
    try {
      doc = JSON.parse(input);
    } catch (e) {
      const why = e instanceof RangeError ? 'nested too deeply' : (e as Error).message;
      throw new AnnotationError(`${source}: invalid JSON (${why})`);
    }
  }
  const polygons: AnnotationPolygon[] = [];
  collect(doc, DEFAULT_LABEL, polygons, source, { source, vertices: 0 });
  return { polygons, mpp: null, source };
}

/** A stable colour per class name, packed as QuPath's [r, g, b]. */
function colourOf(label: string): [number, number, number] {
  let h = 2166136261;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 16777619);
  h >>>= 0;
  return [64 + (h & 127), 64 + ((h >>> 8) & 127), 64 + ((h >>> 16) & 127)];
}

/** Closed ring with the orientation RFC 7946 asks for (outer counter-clockwise, holes clockwise, y up). */
function closedRing(ring: Ring, outer: boolean): number[][] {
  const ccw = signedArea2(ring) > 0;
  const ordered = ccw === outer ? ring : [...ring].reverse();
  const out = ordered.map(([x, y]) => [x, y]);
  if (out.length > 0) out.push([out[0][0], out[0][1]]);
  return out;
}

export interface GeoJSONWriteOptions {
  /** QuPath object type (default 'annotation'; 'detection' for many small objects such as nuclei). */
  objectType?: 'annotation' | 'detection';
  /** Per-class colours [r, g, b] (default: a stable colour derived from the name). */
  colours?: Record<string, [number, number, number]>;
}

/** A QuPath-importable FeatureCollection, one Polygon Feature per polygon. */
export function toGeoJSON(
  polygons: readonly AnnotationPolygon[] | AnnotationSet,
  options: GeoJSONWriteOptions = {},
): { type: 'FeatureCollection'; features: Json[] } {
  const list: readonly AnnotationPolygon[] = 'polygons' in polygons ? polygons.polygons : polygons;
  const objectType = options.objectType ?? 'annotation';
  return {
    type: 'FeatureCollection',
    features: list.map((p) => ({
      type: 'Feature',
      geometry: { type: 'Polygon', coordinates: p.rings.map((r, i) => closedRing(r, i === 0)) },
      properties: {
        objectType,
        classification: { name: p.label, color: options.colours?.[p.label] ?? colourOf(p.label) },
      },
    })),
  };
}

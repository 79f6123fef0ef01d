/**
 * Scanline polygon fill of annotations into a label map for any region and resolution. A pixel takes a polygon's
 * value when its centre lies inside (half-open on the right and bottom, so shared edges are drawn once); later
 * polygons overwrite earlier ones.
 */
import type { AnnotationPolygon, AnnotationSet } from './types.ts';

export interface RasterRegion {
  /** Top-left corner in level-0 pixels. */
  x: number;
  y: number;
  /** Output size in pixels. */
  width: number;
  height: number;
  /** Level-0 pixels per output pixel (default 1, or the level's downsample when `level` and `levels` are given). */
  downsample?: number;
  level?: number;
  levels?: readonly { downsample: number }[];
  /** Class name → value; polygons whose label is absent are skipped. Without a map every polygon is drawn as 1. */
  classMap?: Readonly<Record<string, number>> | ReadonlyMap<string, number>;
  /** Inside test across a polygon's rings (default 'evenodd'; 'nonzero' treats rings 2.. as holes whatever their orientation). */
  fillRule?: 'evenodd' | 'nonzero';
  /**
   * Where vertex coordinates sit relative to level-0 pixels: 'centre' (default; pixel k is centred on coordinate k,
   * as skimage.draw.polygon and cv2.fillPoly draw, and as the MoNuSeg masks were made) or 'corner' (pixel k spans
   * [k, k+1), i.e. its centre is k + 0.5).
   */
  vertexConvention?: 'corner' | 'centre';
}

interface Edge {
  x0: number;
  y0: number;
  /** dx/dy */
  slope: number;
  yMin: number;
  yMax: number;
  dir: 1 | -1;
  ring: number;
}

function regionDownsample(region: RasterRegion): number {
  if (region.downsample !== undefined) return region.downsample;
  if (region.level === undefined || region.level === 0) return 1;
  const level = region.levels?.[region.level];
  if (!level)
    throw new Error(`rasterize: level ${region.level} needs 'levels' (the slide's levels) or 'downsample'`);
  return level.downsample;
}

function classValue(label: string, classMap: RasterRegion['classMap']): number | undefined {
  if (!classMap) return 1;
  if (classMap instanceof Map) return classMap.get(label);
  return (classMap as Record<string, number>)[label];
}

/** Edges of a polygon in output pixel coordinates; horizontal edges never cross a scanline and are left out. */
function polygonEdges(polygon: AnnotationPolygon, ox: number, oy: number, scale: number): Edge[] {
  const edges: Edge[] = [];
  polygon.rings.forEach((ring, r) => {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const ax = (ring[j][0] - ox) * scale;
      const ay = (ring[j][1] - oy) * scale;
      const bx = (ring[i][0] - ox) * scale;
      const by = (ring[i][1] - oy) * scale;
      if (ay === by) continue;
      edges.push({
        x0: ax,
        y0: ay,
        slope: (bx - ax) / (by - ay),
        yMin: Math.min(ay, by),
        yMax: Math.max(ay, by),
        dir: by > ay ? 1 : -1,
        ring: r,
      });
    }
  });
  return edges.sort((a, b) => a.yMin - b.yMin);
}

function fillPolygon(
  out: Uint8Array,
  width: number,
  height: number,
  edges: Edge[],
  ringCount: number,
  value: number,
  nonzero: boolean,
): void {
  if (edges.length === 0) return;
  let yLo = Infinity;
  let yHi = -Infinity;
  for (const e of edges) {
    if (e.yMin < yLo) yLo = e.yMin;
    if (e.yMax > yHi) yHi = e.yMax;
  }
  // Rows whose centre j + 0.5 lies in [yLo, yHi).
  const j0 = Math.max(0, Math.ceil(yLo - 0.5));
  const j1 = Math.min(height - 1, Math.ceil(yHi - 0.5) - 1);
  const winding = new Int32Array(ringCount);
  let active: Edge[] = [];
  let next = 0;
  const xs: number[] = [];
  const dirs: number[] = [];
  const rings: number[] = [];
  const order: number[] = [];
  for (let j = j0; j <= j1; j++) {
    const cy = j + 0.5;
    while (next < edges.length && edges[next].yMin <= cy) active.push(edges[next++]);
    active = active.filter((e) => e.yMax > cy);
    xs.length = 0;
    dirs.length = 0;
    rings.length = 0;
    for (const e of active) {
      if (e.yMin > cy) continue;
      xs.push(e.x0 + (cy - e.y0) * e.slope);
      dirs.push(e.dir);
      rings.push(e.ring);
    }
    if (xs.length < 2) continue;
    order.length = xs.length;
    for (let k = 0; k < xs.length; k++) order[k] = k;
    order.sort((a, b) => xs[a] - xs[b]);
    winding.fill(0);
    let crossings = 0;
    const row = j * width;
    for (let k = 0; k < order.length - 1; k++) {
      const c = order[k];
      crossings++;
      winding[rings[c]] += dirs[c];
      let inside: boolean;
      if (nonzero) {
        inside = winding[0] !== 0;
        for (let r = 1; inside && r < ringCount; r++) if (winding[r] !== 0) inside = false;
      } else {
        inside = (crossings & 1) === 1;
      }
      if (!inside) continue;
      // Pixels whose centre i + 0.5 lies in [xa, xb).
      const i0 = Math.max(0, Math.ceil(xs[c] - 0.5));
      const i1 = Math.min(width - 1, Math.ceil(xs[order[k + 1]] - 0.5) - 1);
      for (let i = i0; i <= i1; i++) out[row + i] = value;
    }
  }
}

/** Label map (row-major, width × height) of the annotations over a region; 0 where nothing is drawn. */
export function rasterize(
  annotations: AnnotationSet | readonly AnnotationPolygon[],
  region: RasterRegion,
  out?: Uint8Array,
): Uint8Array {
  const { width, height } = region;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width >= 0 && height >= 0)) {
    throw new Error(`rasterize: width and height must be non-negative integers, got ${width}x${height}`);
  }
  const downsample = regionDownsample(region);
  if (!(downsample > 0)) throw new Error(`rasterize: downsample must be positive, got ${downsample}`);
  const target = out ?? new Uint8Array(width * height);
  if (target.length < width * height) throw new Error('rasterize: output buffer is too small');
  const polygons: readonly AnnotationPolygon[] =
    'polygons' in annotations ? annotations.polygons : annotations;
  const shift = region.vertexConvention === 'corner' ? 0 : 0.5;
  const nonzero = region.fillRule === 'nonzero';
  const scale = 1 / downsample;
  const x1 = region.x + width * downsample;
  const y1 = region.y + height * downsample;
  for (const polygon of polygons) {
    const value = classValue(polygon.label, region.classMap);
    if (value === undefined || polygon.rings.length === 0) continue;
    if (!(Number.isInteger(value) && value >= 0 && value <= 255)) {
      throw new Error(
        `rasterize: class value for '${polygon.label}' must be an integer 0..255, got ${value}`,
      );
    }
    // Cheap rejection of polygons outside the region (outer ring bounds).
    let minX = Infinity;
    let minY = Infinity;
    let maxX = -Infinity;
    let maxY = -Infinity;
    for (const [px, py] of polygon.rings[0]) {
      if (px < minX) minX = px;
      if (px > maxX) maxX = px;
      if (py < minY) minY = py;
      if (py > maxY) maxY = py;
    }
    if (maxX + shift < region.x || minX + shift > x1 || maxY + shift < region.y || minY + shift > y1)
      continue;
    const edges = polygonEdges(polygon, region.x - shift, region.y - shift, scale);
    fillPolygon(target, width, height, edges, polygon.rings.length, value, nonzero);
  }
  return target;
}

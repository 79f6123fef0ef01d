/**
 * Class regions of an in-memory label map as polygons with holes, with the same tracer as the whole-slide GeoJSON
 * (polygons.ts): 4-connected regions, outlines along pixel edges, rings split where they would touch themselves,
 * so every polygon is valid under OGC rules and its area is its pixel count.
 */
import type { AnnotationPolygon, Ring } from '../annotations/types.ts';
import { ComponentScanner, componentPolygons } from './polygons.ts';

export interface PolygonOptions {
  /** Multiplies mask coordinates into output (e.g. level-0) coordinates; default 1. */
  scaleX?: number;
  scaleY?: number;
  /** Regions smaller than this many mask pixels are dropped; default 0. */
  minPixels?: number;
}

/** Polygons (outer ring + holes) of each class value present in the mask, labelled by `names[value]`. */
export function labelPolygons(
  mask: Uint8Array,
  width: number,
  height: number,
  names: Readonly<Record<number, string>>,
  options: PolygonOptions = {},
): AnnotationPolygon[] {
  if (mask.length !== width * height)
    throw new Error(`labelPolygons: mask has ${mask.length} values, expected ${width}×${height}`);
  const sx = options.scaleX ?? 1;
  const sy = options.scaleY ?? 1;
  const scale = (r: Ring): Ring => r.map(([x, y]) => [x * sx, y * sy]);
  const scanner = new ComponentScanner(width, (v) => names[v] !== undefined);
  const polygons: AnnotationPolygon[] = [];
  const add = (comps: ReturnType<ComponentScanner['finish']>) => {
    for (const c of comps) {
      if (c.pixels < (options.minPixels ?? 0)) continue;
      for (const rings of componentPolygons(c.runs).polygons) {
        polygons.push({ label: names[c.value]!, rings: rings.map(scale) });
      }
    }
  };
  for (let y = 0; y < height; y++) add(scanner.addRow(mask.subarray(y * width, (y + 1) * width)));
  add(scanner.finish());
  return polygons;
}

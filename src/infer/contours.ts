/**
 * Class regions of a label map as polygons with holes: every region's boundary is traced along pixel edges
 * (so rings are exact outlines of the pixels, never self-crossing), outer rings and holes are told apart by their
 * winding, and each hole is given to the smallest outer ring that contains it. Regions are 4-connected: at a corner
 * where two pixels of a class touch only diagonally, the tracer turns towards the pixel it is following.
 */
import { pointInRing, signedArea2 } from '../annotations/geometry.ts';
import type { AnnotationPolygon, Ring } from '../annotations/types.ts';

// Directions on screen (y down): east, south, west, north. Right turn = (d + 1) % 4.
const DX = [1, 0, -1, 0];
const DY = [0, 1, 0, -1];

/** Closed rings (vertices in pixel-corner coordinates) around the pixels where `mask[i] === value`. */
export function traceRings(mask: Uint8Array, width: number, height: number, value: number): Ring[] {
  const W1 = width + 1;
  const inside = (x: number, y: number) =>
    x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x] === value;
  // Outgoing boundary edges per corner vertex, as direction + 1 (two slots: a corner can start two edges).
  const out = new Uint8Array(W1 * (height + 1) * 2);
  const add = (x: number, y: number, d: number) => {
    edges++;
    const v = (y * W1 + x) * 2;
    if (out[v] === 0) out[v] = d + 1;
    else out[v + 1] = d + 1;
  };
  let edges = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (mask[y * width + x] !== value) continue;
      // Clockwise on screen around the pixel: the region lies to the right of every edge.
      if (!inside(x, y - 1)) add(x, y, 0);
      if (!inside(x + 1, y)) add(x + 1, y, 1);
      if (!inside(x, y + 1)) add(x + 1, y + 1, 2);
      if (!inside(x - 1, y)) add(x, y + 1, 3);
    }
  }
  const rings: Ring[] = [];
  const take = (v: number, d: number) => {
    if (out[v] === d + 1) {
      out[v] = out[v + 1]!;
      out[v + 1] = 0;
    } else out[v + 1] = 0;
  };
  for (let start = 0; start < out.length && edges > 0; start += 2) {
    while (out[start] !== 0) {
      const sx = (start / 2) % W1;
      const sy = Math.floor(start / 2 / W1);
      let x = sx;
      let y = sy;
      let d = out[start]! - 1;
      take(start, d);
      edges--;
      const ring: Ring = [[x, y]];
      for (;;) {
        x += DX[d]!;
        y += DY[d]!;
        if (x === sx && y === sy) break;
        const v = (y * W1 + x) * 2;
        const a = out[v]! - 1;
        const b = out[v + 1]! - 1;
        // Prefer the right turn (hug the pixel being followed), then straight, then left.
        const right = (d + 1) % 4;
        const next = a === right || b === right ? right : a === d || b === d ? d : a >= 0 ? a : b;
        if (next !== d) ring.push([x, y]);
        take(v, next);
        edges--;
        d = next;
      }
      // The start vertex is a corner unless the ring arrives there going straight on.
      if (ring.length > 1) rings.push(ring);
    }
  }
  return rings;
}

export interface PolygonOptions {
  /** Multiplies mask coordinates into output (e.g. level-0) coordinates; default 1. */
  scaleX?: number;
  scaleY?: number;
  /** Regions (outer rings) smaller than this many mask pixels are dropped; default 0. */
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
  const sx = options.scaleX ?? 1;
  const sy = options.scaleY ?? 1;
  const polygons: AnnotationPolygon[] = [];
  for (const key of Object.keys(names)) {
    const value = Number(key);
    const rings = traceRings(mask, width, height, value);
    // Traced clockwise on screen = positive shoelace in y-down coordinates for outer rings; holes come out negative.
    const outers = rings
      .filter((r) => signedArea2(r) > 0)
      .map((r) => ({ ring: r, area: signedArea2(r) / 2 }));
    const holes = rings.filter((r) => signedArea2(r) < 0);
    const holesOf = outers.map(() => [] as Ring[]);
    for (const hole of holes) {
      // A point certainly inside the hole: the centre of the pixel left of its first edge.
      const [x0, y0] = hole[0]!;
      const [x1, y1] = hole[1]!;
      const dx = Math.sign(x1 - x0);
      const dy = Math.sign(y1 - y0);
      const px = x0 + 0.5 * dx + 0.5 * dy;
      const py = y0 + 0.5 * dy - 0.5 * dx;
      let best = -1;
      for (let i = 0; i < outers.length; i++) {
        if ((best < 0 || outers[i]!.area < outers[best]!.area) && pointInRing(px, py, outers[i]!.ring))
          best = i;
      }
      if (best >= 0) holesOf[best]!.push(hole);
    }
    const scale = (r: Ring): Ring => r.map(([x, y]) => [x * sx, y * sy]);
    outers.forEach((o, i) => {
      if (o.area < (options.minPixels ?? 0)) return;
      polygons.push({ label: names[value]!, rings: [scale(o.ring), ...holesOf[i]!.map(scale)] });
    });
  }
  return polygons;
}

/**
 * Full-resolution polygons of a label map, streamed: the map is handed in as horizontal bands (top to bottom, full
 * width), connected components are found run by run (4-connectivity: pixels of a class that touch only at a corner
 * are separate objects), and a component is traced and written out as soon as a row no longer continues it. So a
 * nucleus cut by a chunk or band border is one polygon, and memory holds only the components still open (their
 * pixel runs), never the whole map or all polygons.
 *
 * Rings follow pixel edges (vertices on pixel corners of the label grid), so a polygon's area is its pixel count.
 * They are valid under OGC simple-feature rules: where a ring would touch itself at a corner (two pixels of the
 * component meeting only diagonally there), it is split at that vertex into separate rings; a split-off loop of
 * negative orientation is a hole touching its shell at one point, a positive one a separate part. Both are valid.
 *
 * Output: GeoJSON as QuPath reads it (`objectType`, `classification {name, color}`), coordinates in level-0 pixels
 * rounded to `precision` decimals, optionally Douglas–Peucker simplified.
 *  - `objects`: one Feature per connected component (QuPath detection), with its area in µm².
 *  - `classes`: one MultiPolygon Feature per class (QuPath annotation); parts are spooled to a temporary file per
 *    class and joined at the end, so this mode streams too.
 */

import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pointInRing, signedArea2 } from '../annotations/geometry.ts';
import type { Ring } from '../annotations/types.ts';

export type PolygonMode = 'none' | 'classes' | 'objects';

export interface PolygonClass {
  name: string;
  color: readonly [number, number, number];
}

export interface PolygonStreamOptions {
  /** Output .geojson path (written to a temporary file, renamed at finish). */
  path: string;
  mode: 'classes' | 'objects';
  /** Label grid width (every band has this width). */
  width: number;
  /** Label values to trace and their class. Values not listed (e.g. 0, or background) make no polygons. */
  classes: Readonly<Record<number, PolygonClass>>;
  /** Level-0 pixels per label pixel (default 1). */
  scaleX?: number;
  scaleY?: number;
  /**
   * Level-0 size of the slide: coordinates are clamped to it (the label grid's last row and column may reach a
   * fraction of a grid pixel past the slide's edge). Default: no clamping.
   */
  bounds?: { width: number; height: number };
  /** µm per label pixel, for object areas (default 1). */
  mpp?: number;
  /** Decimals of the written coordinates (default 2). */
  precision?: number;
  /** Douglas–Peucker tolerance in label pixels (default 0: exact pixel outlines). */
  simplify?: number;
}

export interface PolygonStreamSummary {
  path: string;
  features: number;
  /** Connected components traced. */
  objects: number;
  /** Rings split where they touched themselves. */
  splits: number;
  /** Objects written with their exact outline because simplifying made them invalid. */
  simplifyFallbacks: number;
}

interface Run {
  x0: number;
  x1: number;
  value: number;
  comp: number;
}

export interface LabelComponent {
  value: number;
  /** Flat (y, x0, x1) triples. */
  runs: number[];
  pixels: number;
}

/** A polygon: outer ring then holes, in label-grid corner coordinates. */
export type PixelPolygon = Ring[];

// Directions on screen (y down): east, south, west, north. Right turn = (d + 1) % 4.
const DX = [1, 0, -1, 0];
const DY = [0, 1, 0, -1];

/**
 * The polygons of one 4-connected component given as (y, x0, x1) runs (any order): outer rings (clockwise on
 * screen) with their holes, each ring simple. `splits` counts the self-touching vertices that were split.
 */
export function componentPolygons(runs: readonly number[]): { polygons: PixelPolygon[]; splits: number } {
  // Runs by row, each row's intervals sorted; the bounding box gives vertices small integer keys.
  const rows = new Map<number, number[]>();
  let minX = Number.POSITIVE_INFINITY;
  let minY = Number.POSITIVE_INFINITY;
  let maxX = 0;
  for (let i = 0; i < runs.length; i += 3) {
    minY = Math.min(minY, runs[i]!);
    minX = Math.min(minX, runs[i + 1]!);
    maxX = Math.max(maxX, runs[i + 2]!);
    const y = runs[i]!;
    let r = rows.get(y);
    if (!r) {
      r = [];
      rows.set(y, r);
    }
    r.push(runs[i + 1]!, runs[i + 2]!);
  }
  for (const r of rows.values()) {
    const pairs: [number, number][] = [];
    for (let i = 0; i < r.length; i += 2) pairs.push([r[i]!, r[i + 1]!]);
    pairs.sort((a, b) => a[0] - b[0]);
    r.length = 0;
    for (const [a, b] of pairs) r.push(a, b);
  }
  // Boundary edges as straight segments: vertex key → outgoing (direction, length) pairs. Region on the right.
  const stride = maxX - minX + 1;
  const keyOf = (x: number, y: number) => (y - minY) * stride + (x - minX);
  const out = new Map<number, number[]>();
  const add = (x: number, y: number, d: number, len: number) => {
    const k = keyOf(x, y);
    const list = out.get(k);
    if (list) list.push(d, len);
    else out.set(k, [d, len]);
  };
  const empty: number[] = [];
  for (const [y, r] of rows) {
    const above = rows.get(y - 1) ?? empty;
    const below = rows.get(y + 1) ?? empty;
    for (const [a, b] of difference(r, above)) add(a, y, 0, b - a);
    for (const [a, b] of difference(r, below)) add(b, y + 1, 2, b - a);
    for (let i = 0; i < r.length; i += 2) {
      add(r[i]!, y + 1, 3, 1);
      add(r[i + 1]!, y, 1, 1);
    }
  }
  const rings: Ring[] = [];
  let splits = 0;
  // Start at vertices with one outgoing edge first: at a vertex with two, which outgoing edge pairs with which
  // incoming one is decided by the turn rule, so the ring must arrive there before it leaves.
  const starts = [...out.entries()].sort((a, b) => a[1].length - b[1].length);
  for (const [startKey, list] of starts) {
    while (list.length > 0) {
      const sx = (startKey % stride) + minX;
      const sy = Math.floor(startKey / stride) + minY;
      let x = sx;
      let y = sy;
      let d = list[0]!;
      let len = list[1]!;
      list.splice(0, 2);
      const ring: [number, number][] = [[x, y]];
      const seen = new Map<number, number>([[startKey, 0]]);
      for (;;) {
        x += DX[d]! * len;
        y += DY[d]! * len;
        if (x === sx && y === sy) break;
        const key = keyOf(x, y);
        const outs = out.get(key)!;
        // Prefer the right turn (hug the pixel being followed: 4-connectivity), then straight, then left.
        let pick = -1;
        if (outs.length === 2) pick = 0;
        else {
          for (const want of [(d + 1) % 4, d, (d + 3) % 4]) {
            for (let j = 0; j < outs.length && pick < 0; j += 2) if (outs[j] === want) pick = j;
            if (pick >= 0) break;
          }
        }
        const nd = outs[pick]!;
        len = outs[pick + 1]!;
        outs.splice(pick, 2);
        if (nd !== d) {
          const at = seen.get(key);
          if (at !== undefined) {
            // The ring comes back to a vertex it has turned at: the loop since then is a ring of its own.
            const loop = ring.splice(at + 1);
            loop.unshift([x, y]);
            for (const [lx, ly] of loop.slice(1)) seen.delete(keyOf(lx, ly));
            rings.push(loop);
            splits++;
          } else {
            seen.set(key, ring.length);
            ring.push([x, y]);
          }
        }
        d = nd;
      }
      rings.push(ring);
    }
  }
  return { polygons: assemble(rings), splits };
}

/** Intervals of `a` not covered by `b` (both sorted, disjoint, flat [x0, x1, ...]). */
function difference(a: readonly number[], b: readonly number[]): [number, number][] {
  const res: [number, number][] = [];
  let j = 0;
  for (let i = 0; i < a.length; i += 2) {
    let s = a[i]!;
    const e = a[i + 1]!;
    while (j < b.length && b[j + 1]! <= s) j += 2;
    let k = j;
    while (k < b.length && b[k]! < e) {
      if (b[k]! > s) res.push([s, b[k]!]);
      s = Math.max(s, b[k + 1]!);
      k += 2;
    }
    if (s < e) res.push([s, e]);
  }
  return res;
}

/** Outer rings (positive shoelace in y-down coordinates) with the holes each smallest enclosing one holds. */
function assemble(rings: Ring[]): PixelPolygon[] {
  const outers = rings.filter((r) => signedArea2(r) > 0).map((r) => ({ ring: r, area: signedArea2(r) }));
  outers.sort((a, b) => a.area - b.area);
  const polygons: PixelPolygon[] = outers.map((o) => [o.ring]);
  for (const hole of rings) {
    if (signedArea2(hole) >= 0) continue;
    // A point certainly inside the hole: the centre of the pixel left of its first edge.
    const [x0, y0] = hole[0]!;
    const [x1, y1] = hole[1]!;
    const dx = Math.sign(x1 - x0);
    const dy = Math.sign(y1 - y0);
    const px = x0 + 0.5 * dx + 0.5 * dy;
    const py = y0 + 0.5 * dy - 0.5 * dx;
    const i = outers.findIndex((o) => pointInRing(px, py, o.ring));
    if (i >= 0) polygons[i]!.push(hole);
  }
  return polygons;
}

/** Douglas–Peucker on a closed ring (no repeated last vertex); keeps at least 4 vertices or returns it as is. */
export function simplifyRing(ring: Ring, tolerance: number): Ring {
  if (tolerance <= 0 || ring.length <= 4) return ring;
  // Anchor at vertex 0 and the vertex farthest from it, then simplify the two open chains.
  const [ax, ay] = ring[0]!;
  let far = 0;
  let farD = -1;
  for (let i = 1; i < ring.length; i++) {
    const d = (ring[i]![0] - ax) ** 2 + (ring[i]![1] - ay) ** 2;
    if (d > farD) {
      farD = d;
      far = i;
    }
  }
  const keep = new Uint8Array(ring.length + 1);
  keep[0] = keep[far] = keep[ring.length] = 1;
  const at = (i: number) => ring[i % ring.length]!;
  const stack: [number, number][] = [
    [0, far],
    [far, ring.length],
  ];
  while (stack.length) {
    const [s, e] = stack.pop()!;
    const [x0, y0] = at(s);
    const [x1, y1] = at(e);
    const len = Math.hypot(x1 - x0, y1 - y0);
    let best = -1;
    let bestD = tolerance;
    for (let i = s + 1; i < e; i++) {
      const [px, py] = at(i);
      const d =
        len === 0
          ? Math.hypot(px - x0, py - y0)
          : Math.abs((x1 - x0) * (y0 - py) - (x0 - px) * (y1 - y0)) / len;
      if (d > bestD) {
        bestD = d;
        best = i;
      }
    }
    if (best >= 0) {
      keep[best] = 1;
      stack.push([s, best], [best, e]);
    }
  }
  const outRing: Ring = [];
  for (let i = 0; i < ring.length; i++) if (keep[i]) outRing.push(ring[i]!);
  return outRing.length >= 4 ? outRing : ring;
}

/**
 * 4-connected components of a label map fed row by row (top to bottom), by pixel runs and a union-find that lives
 * for one row: a component is returned, with its runs, by the row that no longer continues it (or by `finish`).
 * Memory: the components still open.
 */
export class ComponentScanner {
  readonly #width: number;
  readonly #traced: (value: number) => boolean;
  readonly #comps = new Map<number, LabelComponent>();
  /** Union-find links made while scanning the current row (roots map to nothing). */
  readonly #parent = new Map<number, number>();
  #prev: Run[] = [];
  #nextId = 1;
  #y = 0;

  /** `traced(value)`: whether pixels of that value form components (others are background). */
  constructor(width: number, traced: (value: number) => boolean) {
    this.#width = width;
    this.#traced = traced;
  }

  /** Scans the next row (`width` values); returns the components it closes. */
  addRow(row: ArrayLike<number>): LabelComponent[] {
    const y = this.#y++;
    const W = this.#width;
    const cur: Run[] = [];
    let x = 0;
    while (x < W) {
      const v = row[x]!;
      let e = x + 1;
      while (e < W && row[e] === v) e++;
      if (this.#traced(v)) cur.push({ x0: x, x1: e, value: v, comp: 0 });
      x = e;
    }
    // Link each run to the runs of the row above that share a column and a value (4-connectivity).
    const prev = this.#prev;
    let j = 0;
    for (const run of cur) {
      while (j < prev.length && prev[j]!.x1 <= run.x0) j++;
      for (let k = j; k < prev.length && prev[k]!.x0 < run.x1; k++) {
        const p = prev[k]!;
        if (p.value !== run.value) continue;
        const root = this.#find(p.comp);
        if (run.comp === 0) run.comp = root;
        else run.comp = this.#union(this.#find(run.comp), root);
      }
      if (run.comp === 0) {
        run.comp = this.#nextId++;
        this.#comps.set(run.comp, { value: run.value, runs: [], pixels: 0 });
      }
    }
    const alive = new Set<number>();
    for (const run of cur) {
      run.comp = this.#find(run.comp);
      alive.add(run.comp);
      const c = this.#comps.get(run.comp)!;
      c.runs.push(y, run.x0, run.x1);
      c.pixels += run.x1 - run.x0;
    }
    // Components of the row above that this row does not continue are complete.
    const closed: LabelComponent[] = [];
    for (const p of prev) {
      const root = this.#find(p.comp);
      const c = this.#comps.get(root);
      if (!alive.has(root) && c) {
        closed.push(c);
        this.#comps.delete(root);
      }
    }
    this.#parent.clear();
    this.#prev = cur;
    return closed;
  }

  /** The components still open (after the last row). */
  finish(): LabelComponent[] {
    const open = [...this.#comps.values()];
    this.#comps.clear();
    this.#prev = [];
    return open;
  }

  #find(id: number): number {
    let r = id;
    for (let p = this.#parent.get(r); p !== undefined; p = this.#parent.get(r)) r = p;
    if (r !== id) this.#parent.set(id, r);
    return r;
  }

  /** Merges two roots (the one with fewer runs into the other); returns the surviving root. */
  #union(a: number, b: number): number {
    if (a === b) return a;
    const ca = this.#comps.get(a)!;
    const cb = this.#comps.get(b)!;
    const [keep, drop, ck, cd] = ca.runs.length >= cb.runs.length ? [a, b, ca, cb] : [b, a, cb, ca];
    for (const v of cd.runs) ck.runs.push(v);
    ck.pixels += cd.pixels;
    this.#comps.delete(drop);
    this.#parent.set(drop, keep);
    return keep;
  }
}

/**
 * True when every ring has at least 3 distinct vertices and no two segments of any rings meet, except consecutive
 * segments of a ring at their shared vertex (and those do not fold back onto each other). Stricter than OGC (which
 * lets a hole touch its shell at a point) so that it is simple to check; segments are bucketed on a grid so the
 * check is near-linear. Coordinates are label-grid corners (integers), so the arithmetic is exact.
 */
export function ringsAreValid(rings: readonly Ring[]): boolean {
  type Seg = { r: number; i: number; ax: number; ay: number; bx: number; by: number };
  const segs: Seg[] = [];
  let minX = Number.POSITIVE_INFINITY;
  let minY = Number.POSITIVE_INFINITY;
  let maxX = Number.NEGATIVE_INFINITY;
  let maxY = Number.NEGATIVE_INFINITY;
  let total = 0;
  for (const [r, ring] of rings.entries()) {
    if (ring.length < 3) return false;
    for (let i = 0; i < ring.length; i++) {
      const [ax, ay] = ring[i]!;
      const [bx, by] = ring[(i + 1) % ring.length]!;
      if (ax === bx && ay === by) return false;
      segs.push({ r, i, ax, ay, bx, by });
      minX = Math.min(minX, ax);
      minY = Math.min(minY, ay);
      maxX = Math.max(maxX, ax);
      maxY = Math.max(maxY, ay);
      total += Math.abs(bx - ax) + Math.abs(by - ay);
    }
  }
  const cell = Math.max(1, (2 * total) / Math.max(1, segs.length));
  const cols = Math.floor((maxX - minX) / cell) + 1;
  const grid = new Map<number, Seg[]>();
  const orient = (px: number, py: number, qx: number, qy: number, rx: number, ry: number) =>
    Math.sign((qx - px) * (ry - py) - (qy - py) * (rx - px));
  const onSeg = (px: number, py: number, s: Seg) =>
    Math.min(s.ax, s.bx) <= px &&
    px <= Math.max(s.ax, s.bx) &&
    Math.min(s.ay, s.by) <= py &&
    py <= Math.max(s.ay, s.by);
  const meet = (s: Seg, t: Seg) => {
    const o1 = orient(s.ax, s.ay, s.bx, s.by, t.ax, t.ay);
    const o2 = orient(s.ax, s.ay, s.bx, s.by, t.bx, t.by);
    const o3 = orient(t.ax, t.ay, t.bx, t.by, s.ax, s.ay);
    const o4 = orient(t.ax, t.ay, t.bx, t.by, s.bx, s.by);
    if (o1 !== o2 && o3 !== o4) return true;
    return (
      (o1 === 0 && onSeg(t.ax, t.ay, s)) ||
      (o2 === 0 && onSeg(t.bx, t.by, s)) ||
      (o3 === 0 && onSeg(s.ax, s.ay, t)) ||
      (o4 === 0 && onSeg(s.bx, s.by, t))
    );
  };
  for (const s of segs) {
    const c0 = Math.floor((Math.min(s.ax, s.bx) - minX) / cell);
    const c1 = Math.floor((Math.max(s.ax, s.bx) - minX) / cell);
    const r0 = Math.floor((Math.min(s.ay, s.by) - minY) / cell);
    const r1 = Math.floor((Math.max(s.ay, s.by) - minY) / cell);
    const seen = new Set<Seg>();
    for (let cy = r0; cy <= r1; cy++) {
      for (let cx = c0; cx <= c1; cx++) {
        const key = cy * cols + cx;
        const bucket = grid.get(key);
        for (const t of bucket ?? []) {
          if (seen.has(t)) continue;
          seen.add(t);
          const n = rings[s.r]!.length;
          const adjacent = t.r === s.r && ((t.i + 1) % n === s.i || (s.i + 1) % n === t.i);
          if (adjacent) {
            // Consecutive segments share one vertex; they must not fold back along each other.
            const shared = (t.i + 1) % n === s.i ? [s.ax, s.ay] : [s.bx, s.by];
            const [ox, oy] = shared[0] === s.ax && shared[1] === s.ay ? [s.bx, s.by] : [s.ax, s.ay];
            const [px, py] = shared[0] === t.ax && shared[1] === t.ay ? [t.bx, t.by] : [t.ax, t.ay];
            if (orient(shared[0]!, shared[1]!, ox, oy, px, py) === 0) {
              const dot = (ox - shared[0]!) * (px - shared[0]!) + (oy - shared[1]!) * (py - shared[1]!);
              if (dot > 0) return false;
            }
            continue;
          }
          if (meet(s, t)) return false;
        }
        if (bucket) bucket.push(s);
        else grid.set(key, [s]);
      }
    }
  }
  return true;
}

/** Streams bands of a label map in and GeoJSON features out; see the module comment. */
export class PolygonStreamer {
  readonly #o: PolygonStreamOptions;
  readonly #tmp: string;
  readonly #out: Sink;
  readonly #spools = new Map<number, { path: string; sink: Sink; parts: number }>();
  readonly #scanner: ComponentScanner;
  #features = 0;
  #objects = 0;
  #splits = 0;
  #simplifyFallbacks = 0;
  #factor: number;

  constructor(o: PolygonStreamOptions) {
    this.#o = o;
    this.#factor = 10 ** (o.precision ?? 2);
    this.#scanner = new ComponentScanner(o.width, (v) => o.classes[v] !== undefined);
    this.#tmp = `${o.path}.tmp-${process.pid}`;
    this.#out = new Sink(this.#tmp);
    this.#out.stream.write('{"type":"FeatureCollection","features":[\n');
  }

  /** Hands in the next `rows` rows (row-major, `width` bytes each), directly below the previous band. */
  async addBand(labels: Uint8Array, rows: number): Promise<void> {
    const W = this.#o.width;
    if (labels.length !== W * rows)
      throw new Error(`polygons: band has ${labels.length} bytes, expected ${W}×${rows}`);
    for (let r = 0; r < rows; r++) {
      for (const comp of this.#scanner.addRow(labels.subarray(r * W, (r + 1) * W))) await this.#emit(comp);
    }
  }

  async #emit(comp: LabelComponent): Promise<void> {
    const { polygons, splits } = componentPolygons(comp.runs);
    this.#objects++;
    this.#splits += splits;
    const cls = this.#o.classes[comp.value]!;
    const coords = this.#simplified(polygons).map((p) => p.map((r) => this.#ring(r)));
    if (this.#o.mode === 'objects') {
      const mpp = this.#o.mpp ?? 1;
      const geometry =
        coords.length === 1
          ? { type: 'Polygon', coordinates: coords[0] }
          : { type: 'MultiPolygon', coordinates: coords };
      await this.#feature({
        type: 'Feature',
        geometry,
        properties: {
          objectType: 'detection',
          classification: { name: cls.name, color: [...cls.color] },
          measurements: { 'Area µm^2': round(comp.pixels * mpp * mpp, 4) },
        },
      });
      return;
    }
    let spool = this.#spools.get(comp.value);
    if (!spool) {
      const path = `${this.#tmp}.class-${comp.value}`;
      spool = { path, sink: new Sink(path), parts: 0 };
      this.#spools.set(comp.value, spool);
    }
    for (const c of coords) {
      await spool.sink.write(`${spool.parts++ ? ',' : ''}${JSON.stringify(c)}`);
    }
  }

  /**
   * Douglas–Peucker on every ring, kept only when the result is still valid (simple rings that neither cross nor
   * touch each other): otherwise the exact pixel outline is written, which always is.
   */
  #simplified(polygons: PixelPolygon[]): PixelPolygon[] {
    const tol = this.#o.simplify ?? 0;
    if (tol <= 0) return polygons;
    const simple = polygons.map((p) => p.map((r) => simplifyRing(r, tol)));
    if (ringsAreValid(simple.flat())) return simple;
    this.#simplifyFallbacks++;
    return polygons;
  }

  #ring(ring: Ring): number[][] {
    const r = ring;
    const sx = this.#o.scaleX ?? 1;
    const sy = this.#o.scaleY ?? 1;
    const f = this.#factor;
    const bx = this.#o.bounds?.width ?? Number.POSITIVE_INFINITY;
    const by = this.#o.bounds?.height ?? Number.POSITIVE_INFINITY;
    // Only vertices on the grid's far edge can pass the bounds, and all of them by the same amount: clamping moves
    // that edge as a whole and keeps the ring simple.
    const pts = r.map(([x, y]) => [
      Math.round(Math.min(x * sx, bx) * f) / f,
      Math.round(Math.min(y * sy, by) * f) / f,
    ]);
    pts.push(pts[0]!);
    return pts;
  }

  async #feature(feature: unknown): Promise<void> {
    await this.#out.write(`${this.#features++ ? ',\n' : ''}${JSON.stringify(feature)}`);
  }

  /** Closes the components still open, joins the per-class parts, renames the file into place. */
  async finish(): Promise<PolygonStreamSummary> {
    for (const comp of this.#scanner.finish()) await this.#emit(comp);
    try {
      const values = [...this.#spools.keys()].sort((a, b) => a - b);
      for (const v of values) {
        const spool = this.#spools.get(v)!;
        await spool.sink.close();
        const cls = this.#o.classes[v]!;
        const props = JSON.stringify({
          objectType: 'annotation',
          classification: { name: cls.name, color: [...cls.color] },
        });
        await this.#out.write(
          `${this.#features++ ? ',\n' : ''}{"type":"Feature","geometry":{"type":"MultiPolygon","coordinates":[`,
        );
        for await (const chunk of createReadStream(spool.path)) await this.#out.write(chunk as Buffer);
        await this.#out.write(`]},"properties":${props}}`);
      }
      await this.#out.write('\n]}\n');
      await this.#out.close();
      await rename(this.#tmp, this.#o.path);
    } finally {
      for (const s of this.#spools.values()) await rm(s.path, { force: true });
    }
    return {
      path: this.#o.path,
      features: this.#features,
      objects: this.#objects,
      splits: this.#splits,
      simplifyFallbacks: this.#simplifyFallbacks,
    };
  }

  /** Drops the partial output (on error). */
  async abort(): Promise<void> {
    this.#out.stream.destroy();
    for (const s of this.#spools.values()) {
      s.sink.stream.destroy();
      await rm(s.path, { force: true });
    }
    await rm(this.#tmp, { force: true });
  }
}

function round(v: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(v * f) / f;
}

/**
 * A file written in large pieces: small strings are gathered up to 256 KiB per write (one write per feature would
 * spend more time in the stream than in tracing), with backpressure (waits for 'drain' when the stream is full).
 */
class Sink {
  readonly stream: WriteStream;
  #parts: string[] = [];
  #size = 0;

  constructor(path: string) {
    this.stream = createWriteStream(path);
  }

  async write(data: string | Buffer): Promise<void> {
    if (typeof data !== 'string') {
      await this.flush();
      if (!this.stream.write(data)) await once(this.stream, 'drain');
      return;
    }
    this.#parts.push(data);
    this.#size += data.length;
    if (this.#size >= 256 * 1024) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#parts.length === 0) return;
    const text = this.#parts.join('');
    this.#parts = [];
    this.#size = 0;
    if (!this.stream.write(text)) await once(this.stream, 'drain');
  }

  async close(): Promise<void> {
    await this.flush();
    this.stream.end();
    await once(this.stream, 'close');
  }
}

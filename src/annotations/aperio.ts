/**
 * Aperio ImageScope XML annotations: <Annotations><Annotation Name=..><Regions><Region Type=.. NegativeROA=..>
 * <Vertices><Vertex X=.. Y=../>. Vertices are level-0 pixels. Region types: 0 free-hand polygon, 1 rectangle,
 * 2 ellipse (two opposite bounding-box corners), 3 arrow and 4 ruler (no area: skipped). Negative regions
 * (NegativeROA="1") cut holes in the positive region of the same annotation that contains them.
 * A small tag scanner is enough for this flat, attribute-only format; no XML dependency. It is a single forward pass
 * (indexOf, no backtracking regular expressions), so parsing time is linear in the file size whatever it holds.
 */
import { AnnotationError } from './errors.ts';
import { openRing, pointInRing, ringBounds, signedArea2 } from './geometry.ts';
import type { AnnotationPolygon, AnnotationSet, Ring } from './types.ts';

const ELLIPSE_VERTICES = 64;
/** Most vertices one file may hold (a 10^6-vertex polygon is fine; 5·10^6 is ~0.5 GB of coordinates). */
export const MAX_VERTICES = 5_000_000;

interface RawRegion {
  type: number;
  negative: boolean;
  text: string;
  vertices: Ring;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(s: string, source: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-f]{1,8}|#\d{1,10}|amp|lt|gt|quot|apos);/gi, (whole, e: string) => {
    const k = e.toLowerCase();
    const named = ENTITIES[k];
    if (named !== undefined) return named;
    const code = k.startsWith('#x') ? Number.parseInt(k.slice(2), 16) : Number(k.slice(1));
    if (!(code > 0 && code <= 0x10ffff) || (code >= 0xd800 && code <= 0xdfff))
      throw new AnnotationError(`${source}: invalid character reference ${whole} (not a Unicode code point)`);
    return String.fromCodePoint(code);
  });
}

interface Tag {
  name: string;
  closing: boolean;
  selfClosing: boolean;
  /** Attribute values by name (a Map: names such as __proto__ or constructor are plain keys). */
  attrs: Map<string, string>;
}

function isNameChar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) || // a-z
    (c >= 65 && c <= 90) || // A-Z
    (c >= 48 && c <= 57) || // 0-9
    c === 95 || // _
    c === 58 || // :
    c === 46 || // .
    c === 45 || // -
    c > 127
  );
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

/** 1-based line of character `at`, for messages (only computed when something is wrong). */
function lineOf(text: string, at: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < at; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/** Every element tag of the document in order; comments, processing instructions and doctype skipped. */
function* scanTags(text: string, source: string): Generator<Tag> {
  const fail = (at: number, why: string): never => {
    throw new AnnotationError(`${source}: malformed XML at line ${lineOf(text, at)}: ${why}`);
  };
  const n = text.length;
  let i = 0;
  for (;;) {
    const lt = text.indexOf('<', i);
    if (lt < 0) return;
    if (text.startsWith('<!--', lt)) {
      const end = text.indexOf('-->', lt + 4);
      if (end < 0) fail(lt, 'unterminated comment');
      i = end + 3;
      continue;
    }
    if (text.startsWith('<![CDATA[', lt)) {
      const end = text.indexOf(']]>', lt + 9);
      if (end < 0) fail(lt, 'unterminated CDATA section');
      i = end + 3;
      continue;
    }
    if (text[lt + 1] === '?' || text[lt + 1] === '!') {
      const end = text.indexOf('>', lt);
      if (end < 0) fail(lt, 'unterminated declaration');
      i = end + 1;
      continue;
    }
    let p = lt + 1;
    const closing = text[p] === '/';
    if (closing) p++;
    const nameStart = p;
    while (p < n && isNameChar(text.charCodeAt(p))) p++;
    if (p === nameStart) fail(lt, "'<' not followed by an element name");
    const name = text.slice(nameStart, p);
    const attrs = new Map<string, string>();
    let selfClosing = false;
    for (;;) {
      while (p < n && isSpace(text.charCodeAt(p))) p++;
      if (p >= n) fail(lt, `unterminated <${name}> tag`);
      if (text[p] === '>') {
        p++;
        break;
      }
      if (text[p] === '/' && text[p + 1] === '>') {
        selfClosing = true;
        p += 2;
        break;
      }
      const attrStart = p;
      while (p < n && isNameChar(text.charCodeAt(p))) p++;
      if (p === attrStart) fail(p, `unexpected '${text[p]}' in <${name}>`);
      const attr = text.slice(attrStart, p);
      while (p < n && isSpace(text.charCodeAt(p))) p++;
      if (text[p] !== '=') fail(p, `attribute ${attr.slice(0, 40)} of <${name}> has no value`);
      p++;
      while (p < n && isSpace(text.charCodeAt(p))) p++;
      const quote = text[p];
      if (quote !== '"' && quote !== "'")
        fail(p, `attribute ${attr.slice(0, 40)} of <${name}> is not quoted`);
      const end = text.indexOf(quote, p + 1);
      if (end < 0) fail(p, `unterminated value of attribute ${attr.slice(0, 40)}`);
      attrs.set(attr, decodeEntities(text.slice(p + 1, end), source));
      p = end + 1;
    }
    i = p;
    yield { name, closing, selfClosing, attrs };
  }
}

/** A vertex coordinate: a finite number, written out (X="" is not 0). */
function coordinate(value: string | undefined, source: string, axis: string): number {
  const v = value === undefined || value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(v)) {
    const shown = value === undefined ? 'missing' : `"${value.slice(0, 40)}"`;
    throw new AnnotationError(`${source}: Vertex with invalid ${axis} coordinate (${shown})`);
  }
  return v;
}

function regionRing(region: RawRegion): Ring | null {
  const v = region.vertices;
  if (region.type === 3 || region.type === 4) return null;
  if (region.type === 2 && v.length >= 2) {
    const [x0, y0] = v[0];
    const [x1, y1] = v[1];
    const cx = (x0 + x1) / 2;
    const cy = (y0 + y1) / 2;
    const rx = Math.abs(x1 - x0) / 2;
    const ry = Math.abs(y1 - y0) / 2;
    const ring: Ring = [];
    for (let i = 0; i < ELLIPSE_VERTICES; i++) {
      const a = (2 * Math.PI * i) / ELLIPSE_VERTICES;
      ring.push([cx + rx * Math.cos(a), cy + ry * Math.sin(a)]);
    }
    return ring;
  }
  if (region.type === 1 && v.length === 2) {
    const [x0, y0] = v[0];
    const [x1, y1] = v[1];
    return [
      [x0, y0],
      [x1, y0],
      [x1, y1],
      [x0, y1],
    ];
  }
  const ring = openRing(v);
  return ring.length >= 3 ? ring : null;
}

/** Groups one annotation layer's regions into polygons, negative regions becoming holes. */
function layerPolygons(label: string, regions: RawRegion[]): AnnotationPolygon[] {
  const polygons: AnnotationPolygon[] = [];
  const negatives: Ring[] = [];
  for (const region of regions) {
    const ring = regionRing(region);
    if (!ring) continue;
    if (region.negative) negatives.push(ring);
    else polygons.push({ label, rings: [ring] });
  }
  if (negatives.length === 0) return polygons;
  // Bounds and areas once per polygon: each hole only runs the point test on polygons whose box holds it.
  const boxes = polygons.map((p) => ringBounds(p.rings[0]));
  const areas = polygons.map((p) => Math.abs(signedArea2(p.rings[0])));
  for (const hole of negatives) {
    // The smallest positive region that contains the hole's first vertex owns it.
    let owner: AnnotationPolygon | null = null;
    let ownerArea = Infinity;
    const [hx, hy] = hole[0];
    for (const [k, p] of polygons.entries()) {
      const [x0, y0, x1, y1] = boxes[k];
      if (hx < x0 || hx > x1 || hy < y0 || hy > y1) continue;
      const area = areas[k];
      if (area < ownerArea && pointInRing(hx, hy, p.rings[0])) {
        owner = p;
        ownerArea = area;
      }
    }
    owner?.rings.push(hole);
  }
  return polygons;
}

export function parseAperioXml(text: string, source = '<aperio xml>'): AnnotationSet {
  let mpp: number | null = null;
  const polygons: AnnotationPolygon[] = [];
  let sawRoot = false;
  let layer: { label: string; regions: RawRegion[] } | null = null;
  let region: RawRegion | null = null;
  let vertexCount = 0;
  for (const { name: tag, closing, selfClosing, attrs } of scanTags(text, source)) {
    if (closing) {
      if (tag === 'Region' && region && layer) {
        layer.regions.push(region);
        region = null;
      } else if (tag === 'Annotation' && layer) {
        for (const p of layerPolygons(layer.label, layer.regions)) polygons.push(p);
        layer = null;
      }
      continue;
    }
    if (tag === 'Annotations') {
      sawRoot = true;
      const raw = attrs.get('MicronsPerPixel');
      const value = Number(raw);
      if (raw !== undefined && raw.trim() !== '' && Number.isFinite(value) && value > 0) mpp = value;
    } else if (tag === 'Annotation') {
      const name = (attrs.get('Name') ?? '').trim();
      layer = { label: name || `Annotation ${attrs.get('Id') ?? polygons.length + 1}`, regions: [] };
      if (selfClosing) layer = null;
    } else if (tag === 'Region' && layer) {
      const type = attrs.get('Type') ?? '0';
      region = {
        type: type.trim() === '' ? Number.NaN : Number(type),
        negative: attrs.get('NegativeROA') === '1',
        text: attrs.get('Text') ?? '',
        vertices: [],
      };
      if (!Number.isInteger(region.type))
        throw new AnnotationError(`${source}: Region with invalid Type "${type.slice(0, 40)}"`);
      if (selfClosing) region = null;
    } else if (tag === 'Vertex' && region) {
      if (++vertexCount > MAX_VERTICES)
        throw new AnnotationError(
          `${source}: more than ${MAX_VERTICES} vertices (limit for one annotation file)`,
        );
      const x = coordinate(attrs.get('X'), source, 'X');
      const y = coordinate(attrs.get('Y'), source, 'Y');
      region.vertices.push([x, y]);
    }
  }
  if (!sawRoot)
    throw new AnnotationError(`${source}: not an Aperio ImageScope XML file (no <Annotations> element)`);
  if (layer) throw new AnnotationError(`${source}: truncated XML (an <Annotation> element is not closed)`);
  return { polygons, mpp, source };
}

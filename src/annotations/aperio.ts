/**
 * Aperio ImageScope XML annotations: <Annotations><Annotation Name=..><Regions><Region Type=.. NegativeROA=..>
 * <Vertices><Vertex X=.. Y=../>. Vertices are level-0 pixels. Region types: 0 free-hand polygon, 1 rectangle,
 * 2 ellipse (two opposite bounding-box corners), 3 arrow and 4 ruler (no area: skipped). Negative regions
 * (NegativeROA="1") cut holes in the positive region of the same annotation that contains them.
 * A small tag scanner is enough for this flat, attribute-only format; no XML dependency.
 */
import { openRing, pointInRing, signedArea2 } from './geometry.ts';
import type { AnnotationPolygon, AnnotationSet, Ring } from './types.ts';

const ELLIPSE_VERTICES = 64;

interface RawRegion {
  type: number;
  negative: boolean;
  text: string;
  vertices: Ring;
}

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, e: string) => {
    const k = e.toLowerCase();
    if (k === 'amp') return '&';
    if (k === 'lt') return '<';
    if (k === 'gt') return '>';
    if (k === 'quot') return '"';
    if (k === 'apos') return "'";
    return String.fromCodePoint(k.startsWith('#x') ? Number.parseInt(k.slice(2), 16) : Number(k.slice(1)));
  });
}

function attributes(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
    out[m[1]] = decodeEntities(m[2] ?? m[3] ?? '');
  }
  return out;
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
  for (const hole of negatives) {
    // The smallest positive region that contains the hole's first vertex owns it.
    let owner: AnnotationPolygon | null = null;
    let ownerArea = Infinity;
    for (const p of polygons) {
      const area = Math.abs(signedArea2(p.rings[0]));
      if (area < ownerArea && pointInRing(hole[0][0], hole[0][1], p.rings[0])) {
        owner = p;
        ownerArea = area;
      }
    }
    owner?.rings.push(hole);
  }
  return polygons;
}

export function parseAperioXml(text: string, source = '<aperio xml>'): AnnotationSet {
  const body = text.replace(/<!--[\s\S]*?-->/g, '');
  let mpp: number | null = null;
  const polygons: AnnotationPolygon[] = [];
  let sawRoot = false;
  let layer: { label: string; regions: RawRegion[] } | null = null;
  let region: RawRegion | null = null;
  for (const m of body.matchAll(/<(\/?)([A-Za-z_][\w:.-]*)([^>]*?)(\/?)>/g)) {
    const closing = m[1] === '/';
    const tag = m[2];
    const selfClosing = m[4] === '/';
    if (closing) {
      if (tag === 'Region' && region && layer) {
        layer.regions.push(region);
        region = null;
      } else if (tag === 'Annotation' && layer) {
        polygons.push(...layerPolygons(layer.label, layer.regions));
        layer = null;
      }
      continue;
    }
    const attrs = attributes(m[3]);
    if (tag === 'Annotations') {
      sawRoot = true;
      const value = Number(attrs['MicronsPerPixel']);
      if (attrs['MicronsPerPixel'] !== undefined && Number.isFinite(value) && value > 0) mpp = value;
    } else if (tag === 'Annotation') {
      const name = (attrs['Name'] ?? '').trim();
      layer = { label: name || `Annotation ${attrs['Id'] ?? polygons.length + 1}`, regions: [] };
      if (selfClosing) layer = null;
    } else if (tag === 'Region' && layer) {
      region = {
        type: Number(attrs['Type'] ?? 0),
        negative: attrs['NegativeROA'] === '1',
        text: attrs['Text'] ?? '',
        vertices: [],
      };
      if (selfClosing) region = null;
    } else if (tag === 'Vertex' && region) {
      const x = Number(attrs['X']);
      const y = Number(attrs['Y']);
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        throw new Error(`${source}: Vertex with invalid coordinates X="${attrs['X']}" Y="${attrs['Y']}"`);
      }
      region.vertices.push([x, y]);
    }
  }
  if (!sawRoot) throw new Error(`${source}: not an Aperio ImageScope XML file (no <Annotations> element)`);
  if (layer) throw new Error(`${source}: truncated XML (an <Annotation> element is not closed)`);
  return { polygons, mpp, source };
}

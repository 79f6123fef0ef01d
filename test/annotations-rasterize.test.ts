import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import sharp from 'sharp';
import {
  type AnnotationPolygon,
  parseAperioXml,
  parseGeoJSON,
  rasterize,
  readAnnotations,
  signedArea2,
  toGeoJSON,
} from '../src/annotations/index.ts';
import { fixture, needs } from './fixtures.ts';

const MONUSEG = ['TCGA-B0-5698-01Z-00-DX1', 'TCGA-B0-5710-01Z-00-DX1'];

async function readMask(name: string): Promise<Uint8Array> {
  const { data, info } = await sharp(fixture('monuseg', 'masks', `${name}.png`))
    .raw()
    .toBuffer({ resolveWithObject: true });
  const out = new Uint8Array(info.width * info.height);
  for (let i = 0; i < out.length; i++) out[i] = data[i * info.channels] > 0 ? 1 : 0;
  return out;
}

function dice(a: Uint8Array, b: Uint8Array): number {
  let inter = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    inter += a[i] && b[i] ? 1 : 0;
    sum += (a[i] ? 1 : 0) + (b[i] ? 1 : 0);
  }
  return (2 * inter) / sum;
}

const full = { x: 0, y: 0, width: 1000, height: 1000 };

test('MoNuSeg Aperio XML rasterised at level 0 matches the reference masks (Dice ≥ 0.99)', {
  skip: needs(['monuseg']),
}, async () => {
  for (const name of MONUSEG) {
    const ann = await readAnnotations(fixture('monuseg', 'annotations', `${name}.xml`));
    assert.ok(ann.polygons.length > 300, `${name}: ${ann.polygons.length} nuclei`);
    assert.equal(ann.mpp, 0.252);
    const d = dice(rasterize(ann, full), await readMask(name));
    assert.ok(d >= 0.99, `${name}: Dice ${d}`);
  }
});

test('GeoJSON round trip: write, parse, rasterise gives the same mask; QuPath layout and RFC 7946 winding', {
  skip: needs(['monuseg']),
}, async () => {
  const ann = await readAnnotations(fixture('monuseg', 'annotations', `${MONUSEG[0]}.xml`));
  const labelled: AnnotationPolygon[] = ann.polygons.map((p, i) => ({
    ...p,
    label: i % 3 ? 'Nucleus' : 'Tumor',
  }));
  const text = JSON.stringify(toGeoJSON(labelled));
  const doc = JSON.parse(text);
  assert.equal(doc.type, 'FeatureCollection');
  const f0 = doc.features[0];
  assert.equal(f0.properties.objectType, 'annotation');
  assert.equal(f0.properties.classification.name, 'Tumor');
  const ring0 = f0.geometry.coordinates[0];
  assert.deepEqual(ring0[0], ring0[ring0.length - 1], 'rings are closed');
  assert.ok(signedArea2(ring0.slice(0, -1)) > 0, 'outer ring counter-clockwise');
  const back = parseGeoJSON(text, 'roundtrip.geojson');
  assert.deepEqual(
    back.polygons.map((p) => p.label),
    labelled.map((p) => p.label),
  );
  const classMap = { Tumor: 2, Nucleus: 1 };
  assert.deepEqual(rasterize(back, { ...full, classMap }), rasterize(labelled, { ...full, classMap }));
});

test('a region at downsample 2 equals the nearest-downsampled full mask except on boundaries', {
  skip: needs(['monuseg']),
}, async () => {
  const ann = await readAnnotations(fixture('monuseg', 'annotations', `${MONUSEG[1]}.xml`));
  const level0 = rasterize(ann, full);
  const region = { x: 200, y: 300, width: 300, height: 250 };
  for (const how of [{ downsample: 2 }, { level: 1, levels: [{ downsample: 1 }, { downsample: 2 }] }]) {
    const small = rasterize(ann, { ...region, ...how });
    let boundary = 0;
    let flips = 0;
    for (let j = 0; j < region.height; j++) {
      for (let i = 0; i < region.width; i++) {
        // Output pixel (i, j) samples level-0 point (x + 0.5, y + 0.5): nearest pixels are x..x+1, y..y+1; a
        // polygon edge within one more pixel (thin slivers, sharp vertices) can still flip it.
        const x = region.x + 2 * i;
        const y = region.y + 2 * j;
        const near = [
          level0[y * 1000 + x],
          level0[y * 1000 + x + 1],
          level0[(y + 1) * 1000 + x],
          level0[(y + 1) * 1000 + x + 1],
        ];
        const around: number[] = [];
        for (let yy = y - 1; yy <= y + 2; yy++)
          for (let xx = x - 1; xx <= x + 2; xx++) around.push(level0[yy * 1000 + xx]);
        const v = small[j * region.width + i];
        if (around.every((b) => b === around[0]))
          assert.equal(v, around[0], `pixel ${i},${j} away from edges`);
        else {
          boundary++;
          if (near.every((b) => b === near[0]) && v !== near[0]) flips++;
        }
      }
    }
    assert.ok(
      flips < 0.01 * region.width * region.height,
      `${flips} pixels differ from their 2x2 neighbours`,
    );
    assert.ok(boundary < 0.15 * region.width * region.height, `${boundary} boundary pixels`);
    assert.ok(small.some((v) => v === 1));
  }
});

test('pixel-centre sampling: corner vs centre vertex conventions, right/bottom edges exclusive', () => {
  const square: AnnotationPolygon[] = [
    {
      label: 'a',
      rings: [
        [
          [1.2, 1.2],
          [3.7, 1.2],
          [3.7, 3.7],
          [1.2, 3.7],
        ],
      ],
    },
  ];
  const rows = (m: Uint8Array) => [...m.subarray(2 * 6, 3 * 6)];
  // Corner convention: pixel k's centre is k + 0.5 → centres 1.5, 2.5, 3.5 inside [1.2, 3.7).
  assert.deepEqual(
    rows(rasterize(square, { x: 0, y: 0, width: 6, height: 6, vertexConvention: 'corner' })),
    [0, 1, 1, 1, 0, 0],
  );
  // Centre convention (skimage): pixel k sits at k → 2, 3 inside.
  assert.deepEqual(rows(rasterize(square, { x: 0, y: 0, width: 6, height: 6 })), [0, 0, 1, 1, 0, 0]);
  // An offset region sees the same pixels shifted.
  const shifted = rasterize(square, { x: 2, y: 0, width: 4, height: 6 });
  assert.deepEqual([...shifted.subarray(12, 16)], [1, 1, 0, 0]);
});

test('holes and fill rules: even-odd and non-zero agree on holes and differ on a self-overlapping star', () => {
  const outer: [number, number][] = [
    [0, 0],
    [20, 0],
    [20, 20],
    [0, 20],
  ];
  const hole: [number, number][] = [
    [5, 5],
    [15, 5],
    [15, 15],
    [5, 15],
  ];
  const region = { x: 0, y: 0, width: 20, height: 20 };
  for (const fillRule of ['evenodd', 'nonzero'] as const) {
    // Same orientation for the hole: non-zero still treats rings after the first as holes.
    const m = rasterize([{ label: 'a', rings: [outer, hole] }], { ...region, fillRule });
    assert.equal(m[10 * 20 + 10], 0, `${fillRule}: hole`);
    assert.equal(m[2 * 20 + 2], 1, `${fillRule}: ring`);
    assert.equal(
      m.reduce((s, v) => s + v, 0),
      400 - 100,
    );
  }
  const star: [number, number][] = [];
  for (let k = 0; k < 5; k++) {
    const a = -Math.PI / 2 + (k * 4 * Math.PI) / 5;
    star.push([50 + 40 * Math.cos(a), 50 + 40 * Math.sin(a)]);
  }
  const big = { x: 0, y: 0, width: 100, height: 100 };
  assert.equal(rasterize([{ label: 's', rings: [star] }], { ...big, fillRule: 'evenodd' })[50 * 100 + 50], 0);
  assert.equal(rasterize([{ label: 's', rings: [star] }], { ...big, fillRule: 'nonzero' })[50 * 100 + 50], 1);
});

test('class maps: values per label, later polygons on top, unknown labels skipped, bad values rejected', () => {
  const sq = (x: number, label: string): AnnotationPolygon => ({
    label,
    rings: [
      [
        [x, 0],
        [x + 10, 0],
        [x + 10, 10],
        [x, 10],
      ],
    ],
  });
  const polys = [sq(0, 'Tumor'), sq(5, 'Stroma'), sq(20, 'Other')];
  const m = rasterize(polys, {
    x: 0,
    y: 0,
    width: 32,
    height: 10,
    classMap: new Map([
      ['Tumor', 3],
      ['Stroma', 7],
    ]),
  });
  assert.deepEqual([m[5 * 32 + 2], m[5 * 32 + 7], m[5 * 32 + 12], m[5 * 32 + 25]], [3, 7, 7, 0]);
  assert.throws(
    () => rasterize(polys, { x: 0, y: 0, width: 4, height: 4, classMap: { Tumor: 300 } }),
    /0\.\.255/,
  );
  assert.throws(() => rasterize(polys, { x: 0, y: 0, width: 4, height: 4, level: 2 }), /levels/);
});

test('Aperio XML: layers as labels, negative regions as holes, rectangles and ellipses, clear errors', () => {
  const xml = `<?xml version="1.0"?><Annotations MicronsPerPixel="0.5">
  <Annotation Id="1" Name="Tumor &amp; margin"><Regions>
    <Region Id="1" Type="0" NegativeROA="0"><Vertices>
      <Vertex X="0" Y="0"/><Vertex X="40" Y="0"/><Vertex X="40" Y="40"/><Vertex X="0" Y="40"/></Vertices></Region>
    <Region Id="2" Type="1" NegativeROA="1"><Vertices>
      <Vertex X="10" Y="10"/><Vertex X="20" Y="10"/><Vertex X="20" Y="20"/><Vertex X="10" Y="20"/></Vertices></Region>
  </Regions></Annotation>
  <Annotation Id="2" Name=""><Regions>
    <Region Id="1" Type="2"><Vertices><Vertex X="60" Y="0"/><Vertex X="100" Y="40"/></Vertices></Region>
    <Region Id="2" Type="4"><Vertices><Vertex X="0" Y="0"/><Vertex X="9" Y="9"/></Vertices></Region>
  </Regions></Annotation></Annotations>`;
  const ann = parseAperioXml(xml, 'x.xml');
  assert.equal(ann.mpp, 0.5);
  assert.deepEqual(
    ann.polygons.map((p) => [p.label, p.rings.length]),
    [
      ['Tumor & margin', 2],
      ['Annotation 2', 1],
    ],
  );
  const m = rasterize(ann, {
    x: 0,
    y: 0,
    width: 100,
    height: 40,
    classMap: { 'Tumor & margin': 1, 'Annotation 2': 2 },
  });
  assert.equal(m[15 * 100 + 15], 0, 'negative region cuts a hole');
  assert.equal(m[30 * 100 + 30], 1);
  assert.equal(m[20 * 100 + 80], 2, 'ellipse centre');
  assert.equal(m[2 * 100 + 62], 0, 'ellipse corner is outside');
  assert.throws(
    () =>
      parseAperioXml('<Annotations><Annotation><Regions><Region><Vertices><Vertex X="a" Y="1"/>', 'bad.xml'),
    /bad\.xml: Vertex/,
  );
  assert.throws(() => parseAperioXml('<svg></svg>', 'other.xml'), /other\.xml: not an Aperio/);
});

test('GeoJSON as QuPath writes it: MultiPolygon with holes, classification names, points skipped, errors', {
  skip: needs(['monuseg']),
}, async () => {
  const doc = {
    type: 'FeatureCollection',
    features: [
      {
        type: 'Feature',
        geometry: {
          type: 'MultiPolygon',
          coordinates: [
            [
              [
                [0, 0],
                [10, 0],
                [10, 10],
                [0, 10],
                [0, 0],
              ],
              [
                [3, 3],
                [7, 3],
                [7, 7],
                [3, 7],
                [3, 3],
              ],
            ],
            [
              [
                [20, 0],
                [30, 0],
                [30, 10],
                [20, 0],
              ],
            ],
          ],
        },
        properties: { objectType: 'annotation', classification: { name: 'Tumor', color: [200, 0, 0] } },
      },
      { type: 'Feature', geometry: { type: 'Point', coordinates: [1, 1] }, properties: {} },
      {
        type: 'Feature',
        geometry: {
          type: 'Polygon',
          coordinates: [
            [
              [40, 0],
              [50, 0],
              [50, 10],
              [40, 0],
            ],
          ],
        },
        properties: {},
      },
    ],
  };
  const ann = parseGeoJSON(doc, 'q.geojson');
  assert.deepEqual(
    ann.polygons.map((p) => [p.label, p.rings.length, p.rings[0].length]),
    [
      ['Tumor', 2, 4],
      ['Tumor', 1, 3],
      ['annotation', 1, 3],
    ],
  );
  const m = rasterize(ann, { x: 0, y: 0, width: 50, height: 10, classMap: { Tumor: 1 } });
  assert.equal(m[5 * 50 + 5], 0, 'hole');
  assert.equal(m[1 * 50 + 1], 1);
  assert.equal(m[1 * 50 + 45], 0, 'unclassified skipped by the class map');
  assert.throws(() => parseGeoJSON('{"type":', 'broken.geojson'), /broken\.geojson: invalid JSON/);
  assert.throws(
    () => parseGeoJSON({ type: 'Polygon', coordinates: [[[0, 'x']]] }, 'p.geojson'),
    /p\.geojson: invalid position/,
  );
  assert.throws(() => parseGeoJSON({ type: 'Circle' }, 'c.geojson'), /unknown GeoJSON type/);
  const xml = await readFile(fixture('monuseg', 'annotations', `${MONUSEG[0]}.xml`), 'utf8');
  assert.throws(() => parseGeoJSON(xml, 'x.geojson'), /x\.geojson: invalid JSON/);
});

/**
 * Hostile annotation files: references confined to their data set's folder, linear-time parsing with limits,
 * and one-line errors naming the file for everything malformed.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  type AnnotationError,
  parseAperioXml,
  parseGeoJSON,
  rasterize,
  readAnnotations,
} from '../src/annotations/index.ts';
import { isSlidesegError } from '../src/core/errors.ts';

const TMP = await mkdtemp(join(tmpdir(), 'slideseg-hostile-ann-'));
after(() => rm(TMP, { recursive: true, force: true }));

const SQUARE = JSON.stringify({
  type: 'Feature',
  geometry: {
    type: 'Polygon',
    coordinates: [
      [
        [0, 0],
        [10, 0],
        [10, 10],
        [0, 10],
        [0, 0],
      ],
    ],
  },
  properties: { classification: { name: 'tumor' } },
});

describe('annotation references stay inside their root', () => {
  test('a symlink out of the root is refused; a file inside is read', async () => {
    const root = join(TMP, 'dataset');
    const outside = join(TMP, 'outside.geojson');
    await writeFile(outside, SQUARE);
    await rm(root, { recursive: true, force: true });
    await mkdir(root);
    await writeFile(join(root, 'inside.geojson'), SQUARE);
    await symlink(outside, join(root, 'link.geojson'));
    const ok = await readAnnotations(join(root, 'inside.geojson'), { root });
    assert.equal(ok.polygons.length, 1);
    await assert.rejects(readAnnotations(join(root, 'link.geojson'), { root }), (err: Error) => {
      assert.match(err.message, /^\S+link\.geojson: resolves to .*outside/);
      return true;
    });
    await assert.rejects(readAnnotations(join(root, '..', 'outside.geojson'), { root }), /outside/);
    // Without a root the caller trusts the path.
    assert.equal((await readAnnotations(join(root, 'link.geojson'))).polygons.length, 1);
  });
});

function aperio(regions: string, name = 'tumor'): string {
  return `<?xml version="1.0"?><Annotations MicronsPerPixel="0.25"><Annotation Id="1" Name="${name}"><Regions>${regions}</Regions></Annotation></Annotations>`;
}

/** A square [0, size]² drawn with `n` vertices evenly along its edges (so the fill is exactly known). */
function squareVertices(size: number, n: number): [number, number][] {
  const per = n / 4;
  const out: [number, number][] = [];
  for (let i = 0; i < per; i++) out.push([(size * i) / per, 0]);
  for (let i = 0; i < per; i++) out.push([size, (size * i) / per]);
  for (let i = 0; i < per; i++) out.push([size - (size * i) / per, size]);
  for (let i = 0; i < per; i++) out.push([0, size - (size * i) / per]);
  return out;
}

async function write(name: string, text: string): Promise<string> {
  const path = join(TMP, name);
  await writeFile(path, text);
  return path;
}

/** Rejects with a one-line error naming `path` and matching `reason`. */
async function failsClearly(path: string, reason: RegExp): Promise<void> {
  await assert.rejects(readAnnotations(path), (err: Error) => {
    assert.ok(err.message.startsWith(`${path}: `), `names the file: ${err.message.slice(0, 200)}`);
    assert.ok(!err.message.includes('\n'), 'one line');
    assert.ok(err.message.length < 400, `short: ${err.message.length} characters`);
    assert.match(err.message, reason);
    return true;
  });
}

describe('annotation parsing is linear and bounded', { timeout: 120_000 }, () => {
  test('a 200 KB attribute value, name or entity run parses in one pass', async () => {
    const value = 'x'.repeat(200_000);
    const set = parseAperioXml(aperio('', value), 'long.xml');
    assert.equal(set.polygons.length, 0);
    const ents = parseAperioXml(
      aperio(
        '<Region Type="1"><Vertices><Vertex X="0" Y="0"/><Vertex X="5" Y="5"/></Vertices></Region>',
        '&amp;'.repeat(40_000),
      ),
      'ents.xml',
    );
    assert.equal(ents.polygons[0].label, '&'.repeat(40_000));
    // A long attribute name without a value: an error, found without backtracking.
    const path = await write('long-name.xml', aperio('').replace('Id="1"', `${'a'.repeat(200_000)} Id="1"`));
    await failsClearly(path, /malformed XML at line 1: attribute a{40} of <Annotation> has no value/);
  });

  test('a 10^6-vertex polygon: Aperio XML and GeoJSON parse, and patches rasterise it exactly', async () => {
    const ring = squareVertices(4000, 1_000_000);
    const xml = aperio(
      `<Region Type="0"><Vertices>${ring.map(([x, y]) => `<Vertex X="${x}" Y="${y}"/>`).join('')}</Vertices></Region>`,
    );
    const fromXml = parseAperioXml(xml, 'big.xml');
    assert.equal(fromXml.polygons[0].rings[0].length, 1_000_000);
    const geo = JSON.stringify({ type: 'Polygon', coordinates: [[...ring, ring[0]]] });
    const fromGeo = parseGeoJSON(geo, 'big.json');
    assert.equal(fromGeo.polygons[0].rings[0].length, 1_000_000);
    // Patches across the square's edge: inside iff the pixel centre (vertex convention 'corner') is in [0, 4000).
    for (const [x, y] of [
      [3900, 100],
      [-50, 1900],
      [1900, 3950],
      [2000, 2000],
    ]) {
      const mask = rasterize(fromXml, { x, y, width: 128, height: 128, vertexConvention: 'corner' });
      for (let j = 0; j < 128; j++)
        for (let i = 0; i < 128; i++) {
          const cx = x + i + 0.5;
          const cy = y + j + 0.5;
          const inside = cx >= 0 && cx < 4000 && cy >= 0 && cy < 4000 ? 1 : 0;
          assert.equal(mask[j * 128 + i], inside, `pixel (${x + i}, ${y + j})`);
        }
    }
  });
});

describe('malformed annotations fail with one line naming the file', () => {
  test('&#99999999; is an invalid character reference', async () => {
    const path = await write('bad-entity.xml', aperio('', 'a&#99999999;b'));
    await failsClearly(path, /invalid character reference &#99999999;/);
  });

  test('X="" and a missing Y are errors, not 0', async () => {
    const empty = await write(
      'empty-x.xml',
      aperio('<Region><Vertices><Vertex X="" Y="1"/></Vertices></Region>'),
    );
    await failsClearly(empty, /Vertex with invalid X coordinate \(""\)/);
    const missing = await write(
      'missing-y.xml',
      aperio('<Region><Vertices><Vertex X="1"/></Vertices></Region>'),
    );
    await failsClearly(missing, /Vertex with invalid Y coordinate \(missing\)/);
  });

  test('deeply nested GeoJSON is an error, not a stack overflow', async () => {
    const polygon = JSON.stringify({
      type: 'Polygon',
      coordinates: [
        [
          [0, 0],
          [1, 0],
          [1, 1],
          [0, 0],
        ],
      ],
    });
    const open = '{"type":"GeometryCollection","geometries":[';
    const nested = await write('nested.geojson', `${open.repeat(5000)}${polygon}${']}'.repeat(5000)}`);
    await failsClearly(nested, /GeoJSON nested deeper than 64 levels/);
    const arrays = await write('arrays.geojson', `${'['.repeat(200_000)}${']'.repeat(200_000)}`);
    await failsClearly(arrays, /nested (too deeply|deeper than 64 levels)/);
  });

  test('labels named like Object.prototype members are plain labels', async () => {
    const square = [
      [
        [0, 0],
        [10, 0],
        [10, 10],
        [0, 10],
        [0, 0],
      ],
    ];
    const fc = {
      type: 'FeatureCollection',
      features: ['constructor', '__proto__', 'toString', 'tumor'].map((name) => ({
        type: 'Feature',
        geometry: { type: 'Polygon', coordinates: square },
        properties: { classification: { name } },
      })),
    };
    const set = parseGeoJSON(JSON.stringify(fc), 'labels.json');
    assert.deepEqual(
      set.polygons.map((p) => p.label),
      ['constructor', '__proto__', 'toString', 'tumor'],
    );
    // Only 'tumor' has a class: the others are skipped, not looked up on Object.prototype.
    const mask = rasterize(set, { x: 0, y: 0, width: 4, height: 4, classMap: { tumor: 3 } });
    assert.ok(mask.every((v) => v === 3));
    const none = rasterize(set.polygons.slice(0, 3), {
      x: 0,
      y: 0,
      width: 4,
      height: 4,
      classMap: { tumor: 3 },
    });
    assert.ok(none.every((v) => v === 0));
  });
});

test('annotation errors belong to the error family with code "annotations"', async () => {
  const err = await readAnnotations(join(TMP, 'missing.xml')).catch((e: unknown) => e);
  assert.ok(isSlidesegError(err), String(err));
  assert.equal((err as AnnotationError).code, 'annotations');
  assert.match((err as Error).message, /missing\.xml: cannot read annotations \(ENOENT\)/);
});

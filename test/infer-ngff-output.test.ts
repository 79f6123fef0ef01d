/**
 * The OME-Zarr an inference writes, checked by its consumers: the official OME-NGFF 0.4 JSON schemas (image, label,
 * strict; python3-jsonschema, references resolved from the local copies), Python's zarr (Debian python3-zarr:
 * shapes, dtypes, values), slideseg's own reader (image and labels with the slide's mpp), and the GeoJSON of the
 * same run in shapely. NGFF 0.5 (Zarr v3) output is read back by zarrita and our reader.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as zarr from 'zarrita';
import { InferAbortedError, type InferSummary, inferSlide } from '../src/infer/index.ts';
import { openSlide } from '../src/slide/index.ts';
import { FolderStore } from '../src/slide/zarr/store.ts';
import { fixture, ROOT } from './fixtures.ts';

const PY = '/usr/bin/python3';
const SCHEMAS = fixture('ngff-0.4-schemas');
const MODEL = fixture('segformer', 'segformer-tiny-odd');
const CMU = join(ROOT, 'samples', 'cmu-1-small-region.svs');
const MPP = 0.5;
let dir: string;
let v2: InferSummary;

const run = (out: string, extra: Parameters<typeof inferSlide>[1] extends infer O ? Partial<O> : never) =>
  inferSlide(CMU, {
    model: MODEL,
    out,
    mpp: MPP,
    tile: 256,
    overlap: 32,
    batch: 4,
    chunkSize: 256,
    decodeWorkers: 0,
    log: null,
    ...extra,
  });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'infer-ngff-'));
  v2 = await run(join(dir, 'v2'), {});
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function python(script: string, ...args: string[]): string {
  return execFileSync(PY, ['-c', script, ...args], { encoding: 'utf8' });
}

const VALIDATE = `
import json, os, sys
import jsonschema
from jsonschema import RefResolver
schemas = sys.argv[1]
store = {}
for f in [f for f in os.listdir(schemas) if f.endswith('.schema')]:
    s = json.load(open(os.path.join(schemas, f)))
    store[s['$id']] = s
doc = json.load(open(sys.argv[2]))
errors = []
for name in sys.argv[3:]:
    schema = store['https://ngff.openmicroscopy.org/0.4/schemas/' + name]
    cls = jsonschema.validators.validator_for(schema)
    v = cls(schema, resolver=RefResolver.from_schema(schema, store=store))
    errors += [name + ': ' + e.message for e in v.iter_errors(doc)]
print(json.dumps(errors))
`;

/** Schema errors of a .zattrs document against the named official schemas (empty = valid). */
function schemaErrors(zattrs: string, ...schemas: string[]): string[] {
  return JSON.parse(python(VALIDATE, SCHEMAS, zattrs, ...schemas));
}

test('NGFF 0.4: root image and labels pass the official schemas (strict), and the schemas reject the old output', async () => {
  const image = v2.outputs.image;
  assert.deepEqual(schemaErrors(join(image, '.zattrs'), 'image.schema', 'strict_image.schema'), []);
  const label = join(v2.outputs.labels, '.zattrs');
  assert.deepEqual(
    schemaErrors(label, 'image.schema', 'strict_image.schema', 'label.schema', 'strict_label.schema'),
    [],
  );
  // The validator does reject what the issue describes: multiscales without "type"/"metadata" are not strict.
  const attrs = JSON.parse(await readFile(label, 'utf8'));
  const stripped = join(dir, 'stripped.zattrs');
  delete attrs.multiscales[0].type;
  await writeFile(stripped, JSON.stringify(attrs));
  assert.ok(schemaErrors(stripped, 'strict_image.schema').length > 0);
  // Units and scales in µm from the slide's mpp.
  const root = JSON.parse(await readFile(join(image, '.zattrs'), 'utf8'));
  const ms = root.multiscales[0];
  assert.deepEqual(
    ms.axes.map((a: { name: string; unit?: string }) => [a.name, a.unit ?? null]),
    [
      ['c', null],
      ['y', 'micrometer'],
      ['x', 'micrometer'],
    ],
  );
  ms.datasets.forEach((d: { coordinateTransformations: { scale: number[] }[] }, k: number) => {
    assert.deepEqual(d.coordinateTransformations[0]!.scale, [1, MPP * 2 ** k, MPP * 2 ** k]);
  });
  const lab = JSON.parse(await readFile(label, 'utf8'));
  assert.deepEqual(lab.multiscales[0].axes, [
    { name: 'y', type: 'space', unit: 'micrometer' },
    { name: 'x', type: 'space', unit: 'micrometer' },
  ]);
  assert.deepEqual(lab.multiscales[0].datasets[0].coordinateTransformations[0].scale, [MPP, MPP]);
  assert.deepEqual(lab['image-label'].source, { image: '../../' });
  assert.deepEqual(JSON.parse(await readFile(join(image, 'labels', '.zattrs'), 'utf8')).labels, [
    'segmentation',
  ]);
});

test('NGFF 0.4: Python zarr opens image and labels with the grid shape; values match the summary', () => {
  const script = `
import json, sys, zarr, numpy as np
root = zarr.open_group(sys.argv[1], mode='r')
img = root['0']
lab = root['labels/segmentation/0']
counts = np.bincount(lab[:].ravel(), minlength=4).tolist()
levels = [root[d['path']].shape for d in root.attrs['multiscales'][0]['datasets']]
print(json.dumps({'image': list(img.shape), 'dtype': str(img.dtype), 'labels': list(lab.shape),
  'ldtype': str(lab.dtype), 'counts': counts, 'levels': levels, 'mean': float(img[:, 100:300, 100:300].mean())}))
`;
  const r = JSON.parse(python(script, v2.outputs.image));
  const { width: W, height: H } = v2.grid;
  assert.deepEqual(r.image, [3, H, W]);
  assert.deepEqual(r.labels, [H, W]);
  assert.equal(r.dtype, 'uint8');
  assert.equal(r.ldtype, 'uint8');
  assert.equal(r.levels.length, v2.image.levels.length);
  for (const [k, shape] of r.levels.entries()) {
    assert.deepEqual(shape, [3, v2.image.levels[k]!.height, v2.image.levels[k]!.width]);
  }
  assert.equal(r.counts[0], v2.unlabelledPixels);
  for (const a of Object.values(v2.areas)) assert.equal(r.counts[a.label], a.pixels);
  // Real pixels, not a blank image: H&E tissue is darker than white.
  assert.ok(r.mean > 50 && r.mean < 250, `mean ${r.mean}`);
});

test("NGFF 0.4: slideseg's reader opens the image (slide pixels) and the labels with the slide's mpp", async () => {
  const img = await openSlide(v2.outputs.image);
  const lab = await openSlide(v2.outputs.labels);
  const slide = await openSlide(CMU);
  try {
    assert.ok(Math.abs(img.mpp!.x - MPP) < 1e-9 && Math.abs(lab.mpp!.x - MPP) < 1e-9);
    assert.ok(Math.abs(img.mpp!.x - slide.mpp!.x) < 0.01, 'mpp ≈ the slide’s');
    assert.equal(img.levels[0]!.width, v2.grid.width);
    assert.equal(lab.levels[0]!.height, v2.grid.height);
    // The image is the slide on the label grid: a region equals the slide read at the same mpp (resampling noise).
    const ds = MPP / slide.mpp!.x;
    const a = await img.readRegion({ x: 400, y: 600, level: 0, width: 128, height: 128 });
    const b = await slide.readRegionAtMpp({
      x: Math.round(400 * ds),
      y: Math.round(600 * ds),
      mpp: MPP,
      width: 128,
      height: 128,
    });
    let diff = 0;
    for (let i = 0; i < a.data.length; i += 4)
      for (let c = 0; c < 3; c++) diff += Math.abs(a.data[i + c]! - b.data[i + c]!);
    diff /= 128 * 128 * 3;
    assert.ok(diff < 6, `mean abs difference ${diff}`);
  } finally {
    await Promise.all([img.close(), lab.close(), slide.close()]);
  }
});

test('NGFF 0.4: `slideseg info` reports the image and the labels with mpp ≈ 0.5', () => {
  for (const path of [v2.outputs.image, v2.outputs.labels]) {
    const out = execFileSync(process.execPath, [join(ROOT, 'bin', 'slideseg.js'), 'info', path, '--json'], {
      encoding: 'utf8',
    });
    const info = JSON.parse(out);
    assert.equal(info.format, 'ome-zarr');
    assert.deepEqual(info.mpp, { x: MPP, y: MPP });
    assert.equal(info.levels[0].width, v2.grid.width);
  }
});

test('GeoJSON of the sample slide: full-resolution objects, all valid in shapely, areas = label pixels', async () => {
  const script = `
import json, sys
from shapely.geometry import shape
doc = json.load(open(sys.argv[1]))
geoms = [shape(f['geometry']) for f in doc['features']]
areas = {}
for f, g in zip(doc['features'], geoms):
    n = f['properties']['classification']['name']
    areas[n] = areas.get(n, 0) + g.area
print(json.dumps({'invalid': sum(1 for g in geoms if not g.is_valid), 'n': len(geoms), 'areas': areas}))
`;
  const r = JSON.parse(python(script, v2.outputs.geojson));
  assert.equal(r.invalid, 0);
  assert.equal(r.n, v2.polygons.features);
  assert.ok(r.n > 0);
  // Level-0 px² per label pixel: (output mpp / slide mpp)².
  const f = (v2.mpp / v2.slideMpp) ** 2;
  for (const [name, a] of Object.entries(v2.areas)) {
    // Coordinates are rounded to 0.01 px: the area moves by at most ~0.005 px per unit of outline.
    const got = r.areas[name] ?? 0;
    assert.ok(Math.abs(got - a.pixels * f) < 1e-3 * a.pixels * f, `${name}: ${got} vs ${a.pixels * f}`);
  }
  const doc = JSON.parse(await readFile(v2.outputs.geojson, 'utf8'));
  const f0 = doc.features[0];
  assert.ok(['Polygon', 'MultiPolygon'].includes(f0.geometry.type));
  assert.equal(f0.properties.objectType, 'detection');
  assert.equal(f0.properties.classification.color.length, 3);
});

test('NGFF 0.5 (Zarr v3) with an overview-only image: zarr.json metadata, read back by zarrita and our reader', async () => {
  const out = join(dir, 'v3');
  const s = await run(out, { zarrFormat: 3, image: 'overview', overviewSize: 512, polygons: 'none' });
  const root = JSON.parse(await readFile(join(s.outputs.image, 'zarr.json'), 'utf8'));
  assert.equal(root.node_type, 'group');
  assert.equal(root.attributes.ome.version, '0.5');
  assert.equal(root.attributes.ome.multiscales[0].version, undefined);
  const labelsGroup = JSON.parse(await readFile(join(s.outputs.image, 'labels', 'zarr.json'), 'utf8'));
  assert.deepEqual(labelsGroup.attributes.ome.labels, ['segmentation']);
  const lab = JSON.parse(await readFile(join(s.outputs.labels, 'zarr.json'), 'utf8'));
  assert.deepEqual(lab.attributes.ome['image-label'].source, { image: '../../' });
  // Overview: the image starts at the first level whose longest side is ≤ 512, the labels at full resolution.
  const top = s.image.levels[0]!;
  assert.ok(Math.max(top.width, top.height) <= 512 && top.mpp > MPP);
  const arr = await zarr.open.v3(zarr.root(new FolderStore(s.outputs.labels)).resolve('0'), {
    kind: 'array',
  });
  assert.deepEqual(arr.shape, [s.grid.height, s.grid.width]);
  const got = (await zarr.get(arr)) as { data: Uint8Array };
  assert.equal(got.data.filter((v) => v === 0).length, s.unlabelledPixels);
  const img = await openSlide(s.outputs.image);
  const labels = await openSlide(s.outputs.labels);
  try {
    assert.ok(Math.abs(img.mpp!.x - top.mpp) < 1e-9);
    assert.ok(Math.abs(labels.mpp!.x - MPP) < 1e-9);
    assert.equal(img.levels[0]!.width, top.width);
  } finally {
    await Promise.all([img.close(), labels.close()]);
  }
  await assert.rejects(readFile(join(out, 'cmu-1-small-region.geojson')), /ENOENT/);
  assert.equal(s.outputs.geojson.endsWith('.geojson'), true);
});

test('resume after an interruption: the image pyramid equals an uninterrupted run’s', async () => {
  const opts = { mpp: 1.5, tile: 128, overlap: 32, batch: 1, chunkSize: 128, polygons: 'none' } as const;
  const full = await run(join(dir, 'img-full'), opts);
  const out = join(dir, 'img-cut');
  const controller = new AbortController();
  await assert.rejects(
    run(out, {
      ...opts,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.chunksWritten >= 4) controller.abort();
      },
    }),
    InferAbortedError,
  );
  const resumed = await run(out, { ...opts, resume: true });
  assert.ok(resumed.chunks.resumed >= 4);
  assert.equal(resumed.image.levels.length, full.image.levels.length);
  for (let k = 0; k < full.image.levels.length; k++) {
    const read = async (s: InferSummary) => {
      const arr = await zarr.open(new FolderStore(join(s.outputs.image, String(k))), { kind: 'array' });
      return new Uint8Array(((await zarr.get(arr)) as { data: Uint8Array }).data);
    };
    assert.deepEqual(await read(resumed), await read(full), `level ${k}`);
  }
});

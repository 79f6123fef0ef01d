/**
 * Hand-written tiny Zarr v2 images (raw chunks) for what the fixtures do not cover: omero windows, channel
 * colours, picking t/z, fill values, signed and float dtypes — and bad input, which must fail with an error
 * naming the path and the problem.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ChunkCache } from '../src/slide/zarr/chunk-cache.ts';
import { openOmeZarr } from '../src/slide/zarr/index.ts';

const TMP = await mkdtemp(join(tmpdir(), 'slide-zarr-'));
after(() => rm(TMP, { recursive: true, force: true }));

const TYPED: Record<string, { make: (n: number) => { [i: number]: number; buffer: ArrayBufferLike } }> = {
  '|u1': { make: (n) => new Uint8Array(n) },
  '<u2': { make: (n) => new Uint16Array(n) },
  '<i2': { make: (n) => new Int16Array(n) },
  '<f4': { make: (n) => new Float32Array(n) },
};

interface TinyArray {
  dtype: string;
  shape: number[];
  chunks: number[];
  value: (index: number[]) => number;
  fill?: number;
  /** Chunk keys (e.g. '0/1') not to write, so they read as the fill value. */
  skip?: string[];
}

/** Writes a Zarr v2 array with uncompressed C-order chunks, '/'-separated keys. */
async function writeArray(dir: string, a: TinyArray): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, '.zarray'),
    JSON.stringify({
      zarr_format: 2,
      shape: a.shape,
      chunks: a.chunks,
      dtype: a.dtype,
      compressor: null,
      filters: null,
      fill_value: a.fill ?? 0,
      order: 'C',
      dimension_separator: '/',
    }),
  );
  const grid = a.shape.map((s, i) => Math.ceil(s / a.chunks[i]));
  const chunkSize = a.chunks.reduce((p, c) => p * c, 1);
  const each = (dims: number[], visit: (idx: number[]) => void, prefix: number[] = []): void => {
    if (prefix.length === dims.length) {
      visit(prefix);
      return;
    }
    for (let i = 0; i < dims[prefix.length]; i++) each(dims, visit, [...prefix, i]);
  };
  const writes: Promise<void>[] = [];
  each(grid, (chunk) => {
    const key = chunk.join('/');
    if (a.skip?.includes(key)) return;
    const data = TYPED[a.dtype].make(chunkSize);
    let flat = 0;
    each(a.chunks, (local) => {
      const idx = local.map((l, k) => chunk[k] * a.chunks[k] + l);
      data[flat++] = idx.every((v, k) => v < a.shape[k]) ? a.value(idx) : 0;
    });
    writes.push(
      mkdir(join(dir, ...chunk.slice(0, -1).map(String)), { recursive: true }).then(() =>
        writeFile(join(dir, key), new Uint8Array(data.buffer)),
      ),
    );
  });
  await Promise.all(writes);
}

/** Writes an OME-Zarr 0.4 image group with the given axes and levels (each level halves x and y). */
async function writeImage(
  name: string,
  axes: string[],
  levels: TinyArray[],
  omero?: unknown,
  units = 'micrometer',
): Promise<string> {
  const root = join(TMP, name);
  await mkdir(root, { recursive: true });
  await writeFile(join(root, '.zgroup'), JSON.stringify({ zarr_format: 2 }));
  const spatial = (a: string) => a === 'x' || a === 'y';
  const multiscales = [
    {
      version: '0.4',
      name,
      axes: axes.map((a) => ({
        name: a,
        type: spatial(a) ? 'space' : a === 'c' ? 'channel' : a === 't' ? 'time' : 'space',
        ...(spatial(a) ? { unit: units } : {}),
      })),
      datasets: levels.map((_, i) => ({
        path: String(i),
        coordinateTransformations: [
          { type: 'scale', scale: axes.map((a) => (spatial(a) ? 0.25 * 2 ** i : 1)) },
        ],
      })),
    },
  ];
  await writeFile(join(root, '.zattrs'), JSON.stringify(omero ? { multiscales, omero } : { multiscales }));
  for (const [i, level] of levels.entries()) await writeArray(join(root, String(i)), level);
  return root;
}

function pixel(data: Uint8Array, width: number, x: number, y: number): number[] {
  return Array.from(data.subarray((y * width + x) * 4, (y * width + x) * 4 + 4));
}

test('uint16 with an omero window maps start..end to 0..255 (clamped), grey', async () => {
  const root = await writeImage(
    'window-u16',
    ['y', 'x'],
    [{ dtype: '<u2', shape: [5, 7], chunks: [2, 3], value: ([y, x]) => y * 20 + x * 2 }],
    { channels: [{ window: { start: 10, end: 50, min: 0, max: 65535 } }] },
  );
  const s = await openOmeZarr(root);
  assert.deepEqual(s.mpp, { x: 0.25, y: 0.25 });
  const img = await s.readLevel(0, 0, 0, 7, 5);
  for (let y = 0; y < 5; y++) {
    for (let x = 0; x < 7; x++) {
      const v = y * 20 + x * 2;
      const want = Math.min(255, Math.max(0, Math.round(((v - 10) * 255) / 40)));
      assert.deepEqual(pixel(img.data, 7, x, y), [want, want, want, 255], `(${x}, ${y}) value ${v}`);
    }
  }
});

test('int16 without a window spans the dtype range; float32 NaN shows as 0', async () => {
  const i16 = await writeImage(
    'i16',
    ['y', 'x'],
    [{ dtype: '<i2', shape: [1, 3], chunks: [1, 2], value: ([, x]) => [-32768, 0, 32767][x] }],
  );
  const a = await (await openOmeZarr(i16)).readLevel(0, 0, 0, 3, 1);
  assert.deepEqual([a.data[0], a.data[4], a.data[8]], [0, Math.round((32768 * 255) / 65535), 255]);

  const f32 = await writeImage(
    'f32',
    ['y', 'x'],
    [
      {
        dtype: '<f4',
        shape: [2, 2],
        chunks: [2, 2],
        value: ([y, x]) => (y === 1 && x === 1 ? Number.NaN : -1 + y * 2 + x),
      },
    ],
  );
  const s = await openOmeZarr(f32);
  // min/max of the (only, so smallest) level: -1..1, NaN ignored.
  assert.match(s.properties['ome-zarr.display.0'], /window -1\.\.1/);
  const b = await s.readLevel(0, 0, 0, 2, 2);
  assert.deepEqual([b.data[0], b.data[4], b.data[8], b.data[12]], [0, 128, 255, 0]);
});

test('two channels with omero colours blend additively; without colours they are R and G', async () => {
  const level: TinyArray = {
    dtype: '|u1',
    shape: [2, 3, 4],
    chunks: [1, 2, 2],
    value: ([c, y, x]) => (c === 0 ? 100 + x : 10 * y + 3),
  };
  const coloured = await writeImage('two-coloured', ['c', 'y', 'x'], [level], {
    channels: [{ color: 'FF00FF' }, { color: '80FF00' }],
  });
  const s = await openOmeZarr(coloured);
  const img = await s.readLevel(0, 1, 1, 3, 2);
  for (let y = 0; y < 2; y++) {
    for (let x = 0; x < 3; x++) {
      const c0 = 100 + (x + 1);
      const c1 = 10 * (y + 1) + 3;
      const want = [Math.min(255, Math.round(c0 + (c1 * 0x80) / 255)), c1, c0, 255];
      assert.deepEqual(pixel(img.data, 3, x, y), want);
    }
  }
  const plain = await writeImage('two-plain', ['c', 'y', 'x'], [level]);
  const p = await (await openOmeZarr(plain)).readLevel(0, 0, 0, 4, 3);
  assert.deepEqual(pixel(p.data, 4, 2, 1), [102, 13, 0, 255]);
});

test('t,c,z,y,x: indices pick t and z; out-of-range or unknown axes are refused; missing chunks read as fill', async () => {
  const value = ([t, c, z, y, x]: number[]) => t * 100 + z * 10 + c + ((y + x) % 2);
  const root = await writeImage(
    'tczyx',
    ['t', 'c', 'z', 'y', 'x'],
    [
      { dtype: '|u1', shape: [2, 1, 3, 4, 4], chunks: [1, 1, 1, 2, 2], value, fill: 7, skip: ['1/0/2/1/1'] },
      { dtype: '|u1', shape: [2, 1, 3, 2, 2], chunks: [1, 1, 1, 2, 2], value },
    ],
  );
  const s0 = await openOmeZarr(root);
  assert.deepEqual(
    s0.levels.map((l) => [l.width, l.height, l.downsample]),
    [
      [4, 4, 1],
      [2, 2, 2],
    ],
  );
  assert.equal((await s0.readLevel(0, 1, 0, 1, 1)).data[0], 1);
  const s = await openOmeZarr(root, { indices: { t: 1, z: 2 } });
  assert.equal(s.properties['ome-zarr.index.t'], '1');
  assert.equal(s.properties['ome-zarr.index.z'], '2');
  const img = await s.readLevel(0, 0, 0, 4, 4);
  assert.deepEqual(pixel(img.data, 4, 0, 0), [120, 120, 120, 255]);
  assert.deepEqual(pixel(img.data, 4, 1, 0), [121, 121, 121, 255]);
  // Chunk (y 1, x 1) of t 1, z 2 is absent: zarr's fill value.
  assert.deepEqual(pixel(img.data, 4, 3, 3), [7, 7, 7, 255]);
  await assert.rejects(openOmeZarr(root, { indices: { z: 3 } }), /index 3 along "z" is outside 0\.\.2/);
  await assert.rejects(openOmeZarr(root, { indices: { q: 0 } }), /cannot pick an index along "q"/);
});

test('a bioformats2raw layout opens its first series; indices.c shows one channel as grey', async () => {
  const series = await writeImage(
    'b2r.zarr/0',
    ['c', 'y', 'x'],
    [{ dtype: '|u1', shape: [3, 2, 2], chunks: [3, 2, 2], value: ([c, y, x]) => 50 * c + y * 2 + x }],
  );
  const root = join(series, '..');
  await writeFile(join(root, '.zgroup'), JSON.stringify({ zarr_format: 2 }));
  await writeFile(join(root, '.zattrs'), JSON.stringify({ 'bioformats2raw.layout': 3 }));
  const s = await openOmeZarr(root);
  assert.deepEqual(pixel((await s.readLevel(0, 0, 0, 2, 2)).data, 2, 1, 1), [3, 53, 103, 255]);
  const one = await openOmeZarr(root, { indices: { c: 2 } });
  assert.equal(one.properties['ome-zarr.channels'], '1');
  assert.deepEqual(pixel((await one.readLevel(0, 0, 0, 2, 2)).data, 2, 1, 0), [101, 101, 101, 255]);
});

test('bad input: clear errors naming the path and the problem', async () => {
  const good = (): TinyArray => ({ dtype: '|u1', shape: [2, 2], chunks: [2, 2], value: () => 1 });
  await assert.rejects(openOmeZarr(join(TMP, 'nope.zarr')), /nope\.zarr: no such OME-Zarr folder/);
  await writeFile(join(TMP, 'file.zarr'), 'x');
  await assert.rejects(openOmeZarr(join(TMP, 'file.zarr')), /file\.zarr: not a folder/);

  const empty = join(TMP, 'empty.zarr');
  await mkdir(empty);
  await assert.rejects(
    openOmeZarr(empty),
    /empty\.zarr: not an OME-Zarr: neither zarr\.json .* nor \.zattrs/,
  );
  await writeFile(join(empty, '.zgroup'), '{"zarr_format": 2}');
  await assert.rejects(openOmeZarr(empty), /empty\.zarr: has \.zgroup but no \.zattrs/);
  await writeFile(join(empty, '.zattrs'), '{"foo": 1}');
  await assert.rejects(openOmeZarr(empty), /empty\.zarr: \.zattrs has no "multiscales"/);
  await writeFile(join(empty, '.zattrs'), '{"multiscales": [');
  await assert.rejects(openOmeZarr(empty), /empty\.zarr: \.zattrs is not valid JSON/);
  const v3 = join(TMP, 'v3.zarr');
  await mkdir(v3);
  await writeFile(
    join(v3, 'zarr.json'),
    JSON.stringify({ zarr_format: 3, node_type: 'group', attributes: { ome: { version: '0.5' } } }),
  );
  await assert.rejects(openOmeZarr(v3), /v3\.zarr: zarr\.json has no "multiscales"/);

  const boolRoot = await writeImage('bool', ['y', 'x'], [good()]);
  await writeFile(
    join(boolRoot, '0', '.zarray'),
    JSON.stringify({
      zarr_format: 2,
      shape: [2, 2],
      chunks: [2, 2],
      dtype: '|b1',
      compressor: null,
      fill_value: 0,
      order: 'C',
      filters: null,
    }),
  );
  await assert.rejects(openOmeZarr(boolRoot), /bool\/0: unsupported dtype \|b1/);

  const codecRoot = await writeImage('codec', ['y', 'x'], [good()]);
  await writeFile(
    join(codecRoot, '0', '.zarray'),
    JSON.stringify({
      zarr_format: 2,
      shape: [2, 2],
      chunks: [2, 2],
      dtype: '|u1',
      compressor: { id: 'jpeg2k' },
      fill_value: 0,
      order: 'C',
      filters: null,
    }),
  );
  await assert.rejects(openOmeZarr(codecRoot), /codec\/0: unsupported codec "jpeg2k"/);

  const missingLevel = await writeImage('missing-level', ['y', 'x'], [good(), good()]);
  await rm(join(missingLevel, '1'), { recursive: true });
  await assert.rejects(openOmeZarr(missingLevel), /missing-level\/1: missing \.zarray/);

  const noX = await writeImage('no-x', ['y', 'x'], [good()]);
  await writeFile(
    join(noX, '.zattrs'),
    JSON.stringify({ multiscales: [{ axes: ['y', 'q'], datasets: [{ path: '0' }] }] }),
  );
  await assert.rejects(openOmeZarr(noX), /no-x: \.zattrs axes \(y,q\) have no "x" axis/);

  const corrupt = await writeImage('corrupt', ['y', 'x'], [good()]);
  await writeFile(
    join(corrupt, '0', '.zarray'),
    JSON.stringify({
      zarr_format: 2,
      shape: [2, 2],
      chunks: [2, 2],
      dtype: '|u1',
      compressor: { id: 'zlib', level: 1 },
      fill_value: 0,
      order: 'C',
      filters: null,
      dimension_separator: '/',
    }),
  );
  await writeFile(join(corrupt, '0', '0', '0'), 'not zlib data');
  const s = await openOmeZarr(corrupt);
  await assert.rejects(s.readLevel(0, 0, 0, 2, 2), /corrupt\/0: chunk 0,0 could not be read/);
  await assert.rejects(s.readLevel(0, 1, 1, 2, 2), /region \(1, 1, 2×2\) is outside level 0 \(2×2\)/);
  await assert.rejects(s.readLevel(5, 0, 0, 1, 1), /no level 5/);
});

test('chunk cache: byte budget evicts least recently used, shares in-flight loads', async () => {
  const cache = new ChunkCache<Uint8Array>(250);
  let loads = 0;
  const load = (n: number) => async () => {
    loads++;
    return new Uint8Array(n);
  };
  const size = (v: Uint8Array) => v.byteLength;
  const [a1, a2] = await Promise.all([cache.get('a', load(100), size), cache.get('a', load(100), size)]);
  assert.equal(a1, a2);
  assert.equal(loads, 1);
  await cache.get('b', load(100), size);
  await cache.get('a', load(100), size); // touch a: b is now the oldest
  await cache.get('c', load(100), size); // 300 > 250: evicts b
  assert.equal(cache.usedBytes, 200);
  loads = 0;
  await cache.get('a', load(100), size);
  await cache.get('c', load(100), size);
  assert.equal(loads, 0);
  await cache.get('b', load(100), size);
  assert.equal(loads, 1);
  await cache.get('huge', load(1000), size); // larger than the budget: returned, not kept
  assert.equal(cache.size, 2);
});

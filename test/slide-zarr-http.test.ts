/**
 * OME-Zarr over HTTP: a zarr folder served by a local http.createServer on 127.0.0.1. Reads fetch only the
 * chunks the rectangle touches (each once, thanks to the chunk cache) and give the same pixels as the folder.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { openOmeZarr } from '../src/slide/zarr/index.ts';
import { fixture, needs } from './fixtures.ts';

const ROOT = fixture('derived');
const requests: string[] = [];
let server: Server;
let base = '';

before(async () => {
  server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(`${req.method} ${path}`);
    const file = normalize(join(ROOT, path));
    if (!file.startsWith(ROOT)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-length': body.length }).end(req.method === 'HEAD' ? undefined : body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Chunk requests (not metadata documents) under `zarr` since `from`. */
function chunkRequests(zarrName: string, from: number): string[] {
  return requests
    .slice(from)
    .map((r) => r.replace(/^GET /, ''))
    .filter((p) => p.startsWith(`/${zarrName}/`) && !/(\.zarray|\.zattrs|\.zgroup|zarr\.json)$/.test(p))
    .map((p) => p.slice(zarrName.length + 2))
    .sort();
}

test('HTTP c,y,x OME-Zarr: only the chunks a read touches are fetched, once each, pixels as from the folder', {
  skip: needs(['derived']),
}, async () => {
  const name = 'cmu-1.ome.zarr';
  const mark = requests.length;
  const remote = await openOmeZarr(`${base}/${name}`);
  assert.deepEqual(chunkRequests(name, mark), [], 'opening a uint8 zarr fetches no chunk');
  assert.deepEqual(
    remote.levels.map((l) => [l.width, l.height, l.downsample]),
    [
      [1280, 1536, 1],
      [640, 768, 2],
      [320, 384, 4],
      [160, 192, 8],
    ],
  );
  const local = await openOmeZarr(fixture('derived', name));

  // Level 0, x 300..399, y 300..399: inside chunk (y 1, x 1) of 256×256 chunks holding all 3 channels.
  let from = requests.length;
  const a = await remote.readLevel(0, 300, 300, 100, 100);
  assert.deepEqual(chunkRequests(name, from), ['0/0/1/1']);
  assert.deepEqual(a.data, (await local.readLevel(0, 300, 300, 100, 100)).data);

  // Level 1, crossing the x chunk border at 256 and the y border at 512: four chunks.
  from = requests.length;
  const b = await remote.readLevel(1, 250, 500, 20, 30);
  assert.deepEqual(chunkRequests(name, from), ['1/0/1/0', '1/0/1/1', '1/0/2/0', '1/0/2/1']);
  assert.deepEqual(b.data, (await local.readLevel(1, 250, 500, 20, 30)).data);

  // Reading again hits the cache: no request at all.
  from = requests.length;
  await remote.readLevel(0, 310, 320, 50, 50);
  assert.deepEqual(requests.slice(from), []);
  await remote.close();
  await local.close();
});

test('HTTP t,c,z,y,x OME-Zarr: one chunk per channel for a tile', { skip: needs(['derived']) }, async () => {
  const name = 'cmu-1-5d.ome.zarr';
  const remote = await openOmeZarr(`${base}/${name}/`);
  const from = requests.length;
  const img = await remote.readLevel(0, 600, 1100, 64, 64);
  // Chunks are 1×1×1×512×512: t 0, channels 0-2, z 0, y 2, x 1.
  assert.deepEqual(chunkRequests(name, from), ['0/0/0/0/2/1', '0/0/1/0/2/1', '0/0/2/0/2/1']);
  const local = await openOmeZarr(fixture('derived', 'cmu-1.ome.zarr'));
  assert.deepEqual(img.data, (await local.readLevel(0, 600, 1100, 64, 64)).data);
  await remote.close();
  await local.close();
});

test('HTTP: a URL without an OME-Zarr gives an error naming the URL', async () => {
  await assert.rejects(openOmeZarr(`${base}/missing.zarr`), (err: Error) => {
    assert.match(err.message, /missing\.zarr/);
    assert.match(err.message, /neither zarr\.json .* nor \.zattrs/);
    return true;
  });
});

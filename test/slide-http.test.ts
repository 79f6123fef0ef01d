/** Slides over HTTP(S) range requests from a local server: same pixels as the file, few bytes, clear errors. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type HttpByteSource, openSlide, SlideError, type TiffPyramidSource } from '../src/slide/index.ts';
import { fixture, needs } from './fixtures.ts';
import { compareRgba } from './slide-helpers.ts';

const PAGES_MISSING = needs(['derived', 'cmu-1-pyramid-pages.tif']);
const files: Record<string, Buffer> = {
  '/cmu.svs': readFileSync(fixture('slides', 'cmu-1-small-region.svs')),
  ...(PAGES_MISSING ? {} : { '/pages.tif': readFileSync(fixture('derived', 'cmu-1-pyramid-pages.tif')) }),
};
let bytesServed = 0;
let server: Server;
let base = '';

before(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/hang') return; // never answers
    if (url === '/error') {
      res.writeHead(500).end('boom');
      return;
    }
    const body = files[url.replace(/^\/norange/, '')];
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!range || url.startsWith('/norange')) {
      bytesServed += body.length;
      res.writeHead(200, { 'Content-Length': body.length }).end(body);
      return;
    }
    const start = Number(range[1]);
    const end = Math.min(Number(range[2]), body.length - 1);
    bytesServed += end - start + 1;
    res
      .writeHead(206, {
        'Content-Range': `bytes ${start}-${end}/${body.length}`,
        'Content-Length': end - start + 1,
      })
      .end(body.subarray(start, end + 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(
  () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
);

describe('HTTP slides', () => {
  for (const [path, file] of [
    ['/cmu.svs', fixture('slides', 'cmu-1-small-region.svs')],
    ['/pages.tif', fixture('derived', 'cmu-1-pyramid-pages.tif')],
  ]) {
    const skip = path === '/pages.tif' && PAGES_MISSING;
    test(`${path}: a small region reads the same pixels as the file and fetches far less than the file`, {
      skip,
    }, async () => {
      bytesServed = 0;
      const remote = await openSlide(base + path, { cacheBytes: 1 << 20 });
      const local = await openSlide(file, { cacheBytes: 1 << 20 });
      assert.deepEqual(remote.levels, local.levels);
      assert.deepEqual(remote.properties, local.properties);
      const region = { x: 300, y: 500, level: 0, width: 200, height: 150 };
      const [a, b] = await Promise.all([remote.readRegion(region), local.readRegion(region)]);
      const d = compareRgba(a, b, 0);
      assert.equal(d.bad + d.alphaMismatch, 0);
      const size = files[path].length;
      assert.ok(bytesServed < size / 5, `fetched ${bytesServed} of ${size} bytes`);
      const src = (remote as unknown as { pyramid: TiffPyramidSource }).pyramid.byteSource as HttpByteSource;
      assert.equal(src.bytesFetched, bytesServed);
      await remote.close();
      await local.close();
    });
  }

  test('neighbouring tiles are fetched in coalesced requests', async () => {
    const remote = await openSlide(`${base}/cmu.svs`, { cacheBytes: 1 << 20 });
    const src = (remote as unknown as { pyramid: TiffPyramidSource }).pyramid.byteSource as HttpByteSource;
    const before = src.requests;
    // 3 x 3 tiles of 240 px.
    await remote.readRegion({ x: 240, y: 240, level: 0, width: 720, height: 720 });
    assert.ok(src.requests - before < 9, `${src.requests - before} requests for 9 tiles`);
    await remote.close();
  });

  const fails = async (url: string, reason: RegExp, timeoutMs = 5000) =>
    assert.rejects(
      () => openSlide(url, { http: { timeoutMs } }),
      (err: unknown) => err instanceof SlideError && err.message.includes(url) && reason.test(err.message),
    );

  test('HTTP 404 and 500', async () => {
    await fails(`${base}/missing.svs`, /HTTP 404/);
    await fails(`${base}/error`, /HTTP 500/);
  });

  test('server without range support', async () => {
    await fails(`${base}/norange/cmu.svs`, /does not support HTTP range requests/);
  });

  test('server that never answers times out', async () => {
    await fails(`${base}/hang`, /no answer within 300 ms/, 300);
  });

  test('unreachable server', async () => {
    // Port 1 on localhost: connection refused at once.
    await fails('http://127.0.0.1:1/slide.svs', /cannot reach server/);
  });
});

/**
 * Misbehaving HTTP servers on 127.0.0.1: endless bodies, a gzip bomb, stalls before headers and mid-body, a slow
 * drip, redirect loops. Every request of the TIFF and OME-Zarr readers ends within its time limits and body cap,
 * with a one-line SlideError naming the URL; a plain redirect to a good server still gives the right pixels.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { type OpenSlideOptions, openSlide, SlideError } from '../src/slide/index.ts';
import { ROOT } from './fixtures.ts';
import { expectedRgba, writeTinyZarr } from './fuzz/tiny-zarr.ts';

const SAMPLE = readFileSync(`${ROOT}/samples/cmu-1-small-region.svs`);
/** 64 MiB of zeros in about 64 KiB: inflating it without a limit would take 64 MiB (scale as you like). */
const BOMB = gzipSync(new Uint8Array(64 * 1024 * 1024), { level: 9 });
let server: Server;
let base = '';
/** Bytes written by the endless responses, to check the client stopped reading early. */
let endlessWritten = 0;

function endless(res: ServerResponse, status: number, headers: Record<string, string>): void {
  res.writeHead(status, headers);
  const block = Buffer.alloc(64 * 1024, 0x41);
  const pump = () => {
    while (!res.destroyed && res.write(block)) endlessWritten += block.length;
    if (!res.destroyed) res.once('drain', pump);
  };
  res.on('close', () => res.removeAllListeners('drain'));
  pump();
}

function serveRange(res: ServerResponse, range: string | undefined, body: Buffer): void {
  const m = /^bytes=(\d+)-(\d+)$/.exec(range ?? '');
  if (!m) {
    res.writeHead(200, { 'content-length': body.length }).end(body);
    return;
  }
  const start = Number(m[1]);
  const end = Math.min(Number(m[2]), body.length - 1);
  res
    .writeHead(206, {
      'content-range': `bytes ${start}-${end}/${body.length}`,
      'content-length': end - start + 1,
    })
    .end(body.subarray(start, end + 1));
}

let tiny = '';

before(async () => {
  tiny = await mkdtemp(join(tmpdir(), 'slideseg-hostile-http-'));
  await writeTinyZarr(join(tiny, 'store.zarr'));
  server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x').pathname;
    const store = /^\/(tiny|endless-chunk)\.zarr\/(.*)$/.exec(url);
    if (store) {
      if (store[1] === 'endless-chunk' && store[2] === '0/0/0/0') return endless(res, 200, {});
      try {
        const body = await readFile(join(tiny, 'store.zarr', store[2]));
        return void res.writeHead(200, { 'content-length': body.length }).end(body);
      } catch {
        return void res.writeHead(404).end();
      }
    }
    if (url.startsWith('/stall')) return; // accepts, never answers
    if (url === '/endless.svs') return endless(res, 206, { 'content-range': 'bytes 0-0/1000000' });
    if (url.startsWith('/endless.zarr/')) return endless(res, 200, {});
    if (url === '/quiet-body.svs') {
      res.writeHead(206, { 'content-range': 'bytes 0-0/1000000', 'content-length': '1' });
      res.flushHeaders();
      return; // headers, then silence
    }
    if (url === '/drip.svs') {
      // The size probe is answered; every other range comes one byte per 150 ms (never idle, long unfinished).
      if (req.headers.range === 'bytes=0-0') return serveRange(res, req.headers.range, SAMPLE);
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '') as RegExpExecArray;
      const length = Number(m[2]) - Number(m[1]) + 1;
      res.writeHead(206, {
        'content-range': `bytes ${m[1]}-${m[2]}/${SAMPLE.length}`,
        'content-length': String(length),
      });
      let sent = 0;
      const timer = setInterval(() => {
        res.write(Buffer.of(0x49));
        if (++sent === length) {
          clearInterval(timer);
          res.end();
        }
      }, 150);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (url === '/oversized.svs')
      return void res.writeHead(206, { 'content-range': 'bytes 0-0/1000', 'content-length': '100000' }).end();
    if (url === '/gzip.svs')
      return void res
        .writeHead(206, { 'content-range': 'bytes 0-0/1000000', 'content-encoding': 'gzip' })
        .end(BOMB);
    if (url.startsWith('/bomb.zarr/'))
      return void res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': BOMB.length }).end(BOMB);
    const loop = /^\/loop(\d+)\.svs$/.exec(url);
    if (loop) return void res.writeHead(302, { location: `/loop${Number(loop[1]) + 1}.svs` }).end();
    if (url === '/ping.svs') return void res.writeHead(302, { location: '/pong.svs' }).end();
    if (url === '/pong.svs') return void res.writeHead(302, { location: '/ping.svs' }).end();
    if (url === '/redirect.svs') return void res.writeHead(302, { location: '/good/cmu.svs' }).end();
    if (url === '/good/cmu.svs') return serveRange(res, req.headers.range, SAMPLE);
    if (url === '/shifted.svs') {
      // Answers every range after the size probe with the bytes one further on, and says so.
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '') as RegExpExecArray;
      const shift = m[1] === '0' && m[2] === '0' ? 0 : 1;
      const start = Number(m[1]) + shift;
      const end = Number(m[2]) + shift;
      return void res
        .writeHead(206, {
          'content-range': `bytes ${start}-${end}/${SAMPLE.length}`,
          'content-length': end - start + 1,
        })
        .end(SAMPLE.subarray(start, end + 1));
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  await rm(tiny, { recursive: true, force: true });
});

const quick: OpenSlideOptions = { http: { timeoutMs: 400, idleTimeoutMs: 300, totalTimeoutMs: 2000 } };

async function failsClearly(url: string, reason: RegExp, opts: OpenSlideOptions = quick): Promise<void> {
  const started = Date.now();
  await assert.rejects(openSlide(url, opts), (err: unknown) => {
    assert.ok(err instanceof SlideError, `expected a SlideError, got ${err}`);
    assert.ok(err.message.startsWith(url), `names the URL: ${err.message}`);
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    assert.match(err.message, reason);
    return true;
  });
  // Bounded by the limits given (2 s overall), with slack for a loaded machine; never the 30 s defaults.
  assert.ok(Date.now() - started < 15_000, `ended after ${Date.now() - started} ms`);
}

describe('misbehaving HTTP servers', { timeout: 120_000 }, () => {
  test('TIFF: an endless body is cut off at the requested range', async () => {
    endlessWritten = 0;
    await failsClearly(`${base}/endless.svs`, /server sent more than the 1 bytes asked for/);
    assert.ok(
      endlessWritten < 16 * 1024 * 1024,
      `server wrote ${endlessWritten} bytes before the client hung up`,
    );
  });

  test('OME-Zarr: an endless metadata document is cut off at the metadata cap', async () => {
    endlessWritten = 0;
    await failsClearly(`${base}/endless.zarr`, /server sent more than the 16777216 bytes asked for/);
    assert.ok(
      endlessWritten < 64 * 1024 * 1024,
      `server wrote ${endlessWritten} bytes before the client hung up`,
    );
  });

  test('OME-Zarr: a chunk body is capped at the size its chunk declares; a good store reads right', async () => {
    endlessWritten = 0;
    const url = `${base}/endless-chunk.zarr`;
    await assert.rejects(
      (async () => {
        const slide = await openSlide(url, quick);
        try {
          await slide.readRegion({ x: 0, y: 0, level: 0, width: 64, height: 64 });
        } finally {
          await slide.close();
        }
      })(),
      (err: unknown) => {
        assert.ok(err instanceof SlideError && !err.message.includes('\n'), String(err));
        assert.match(
          err.message,
          /chunk 0,0,0 could not be read: .*server sent more than the 3072 bytes asked for/,
        );
        return true;
      },
    );
    assert.ok(endlessWritten < 16 * 1024 * 1024, `server wrote ${endlessWritten} bytes`);
    const good = await openSlide(`${base}/tiny.zarr`, quick);
    try {
      const region = await good.readRegion({ x: 0, y: 0, level: 0, width: 64, height: 64 });
      assert.deepEqual(region.data, expectedRgba(0, 0, 64, 64));
    } finally {
      await good.close();
    }
  });

  test('bytes of another range than the one asked for are refused', async () => {
    await failsClearly(
      `${base}/shifted.svs`,
      /server answered the range 0-15 with Content-Range "bytes 1-16\/1938955"/,
    );
  });

  test('a Content-Length beyond the range is refused before reading the body', async () => {
    await failsClearly(`${base}/oversized.svs`, /announces 100000 bytes where at most 1 were asked for/);
  });

  test('gzip bombs: a compressed range body and a metadata document inflate only up to the cap', async () => {
    await failsClearly(`${base}/gzip.svs`, /server sent more than the 1 bytes|expands beyond 1 bytes/);
    await failsClearly(
      `${base}/bomb.zarr`,
      /cannot decode the gzip response body: expands beyond 16777216 bytes/,
    );
  });

  test('stall before headers: TIFF and OME-Zarr URLs time out', async () => {
    await failsClearly(`${base}/stall.svs`, /no answer within 400 ms/);
    await failsClearly(`${base}/stall.zarr`, /no answer within 400 ms/);
  });

  test('stall after the headers: the idle timeout ends it', async () => {
    await failsClearly(`${base}/quiet-body.svs`, /no data for 300 ms/);
  });

  test('a slow drip that is never idle ends at the overall deadline', async () => {
    await failsClearly(`${base}/drip.svs`, /request not finished within 2000 ms/);
  });

  test('redirect loops and chains are capped', async () => {
    await failsClearly(`${base}/ping.svs`, /more than 5 HTTP redirects/);
    await failsClearly(`${base}/loop0.svs`, /more than 2 HTTP redirects/, {
      http: { ...quick.http, maxRedirects: 2 },
    });
  });

  test('a redirect to a well-behaved server reads the same pixels as the file', async () => {
    const remote = await openSlide(`${base}/redirect.svs`, quick);
    const local = await openSlide(`${ROOT}/samples/cmu-1-small-region.svs`);
    try {
      const req = { x: 100, y: 200, level: 0, width: 300, height: 200 };
      const [a, b] = await Promise.all([remote.readRegion(req), local.readRegion(req)]);
      assert.deepEqual(a.data, b.data);
    } finally {
      await remote.close();
      await local.close();
    }
  });
});

/**
 * The browser build's byte source (`FetchByteSource`, fetch + Range) against misbehaving servers on 127.0.0.1, run
 * in Node (same fetch API): exact ranges, coalescing, and one-line errors for a server without ranges, a wrong range,
 * an endless body, a short body, a 404 and a server that never answers.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { FetchByteSource } from '../src/slide/browser/fetch-source.ts';
import { SlideError } from '../src/slide/errors.ts';

const FILE = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 251);
let server: Server;
let base = '';
let requests = 0;

before(async () => {
  server = createServer((req, res) => {
    requests++;
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    const start = Number(m?.[1] ?? 0);
    const end = Math.min(Number(m?.[2] ?? FILE.length - 1), FILE.length - 1);
    const range = { 'content-range': `bytes ${start}-${end}/${FILE.length}` };
    switch (req.url) {
      case '/ok':
        return res.writeHead(206, range).end(FILE.subarray(start, end + 1));
      case '/norange':
        return res.writeHead(200).end(FILE);
      case '/shifted':
        if (start === 0 && end === 0) return res.writeHead(206, range).end(FILE.subarray(0, 1));
        return res
          .writeHead(206, { 'content-range': `bytes ${start + 1}-${end + 1}/${FILE.length}` })
          .end(FILE.subarray(start + 1, end + 2));
      case '/endless': {
        if (start === 0 && end === 0) return res.writeHead(206, range).end(FILE.subarray(0, 1));
        res.writeHead(206, range);
        const timer = setInterval(() => res.write(FILE.subarray(0, 65536)), 1);
        res.on('close', () => clearInterval(timer));
        setTimeout(() => {
          clearInterval(timer);
          res.end();
        }, 5000);
        return;
      }
      case '/short':
        if (start === 0 && end === 0) return res.writeHead(206, range).end(FILE.subarray(0, 1));
        return res.writeHead(206, range).end(FILE.subarray(start, end));
      case '/hang':
        return; // never answers
      default:
        return res.writeHead(404).end();
    }
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

test('exact ranges; neighbouring ranges share one request', async () => {
  const src = await FetchByteSource.open(`${base}/ok`, { coalesceGapBytes: 1024 });
  assert.equal(src.size, FILE.length);
  assert.deepEqual(await src.read(1234, 500), FILE.subarray(1234, 1734));
  const before = src.requests;
  const parts = await src.readMany([
    { offset: 50_000, length: 100 },
    { offset: 10, length: 20 },
    { offset: 50_200, length: 10 },
  ]);
  assert.deepEqual(parts, [
    FILE.subarray(50_000, 50_100),
    FILE.subarray(10, 30),
    FILE.subarray(50_200, 50_210),
  ]);
  assert.equal(src.requests - before, 2, 'two spans: 10..30 and 50000..50210');
  await assert.rejects(src.read(FILE.length - 10, 20), /beyond the end of the file/);
});

test('misbehaving servers give one-line errors naming the URL', async () => {
  const fails = (path: string, why: RegExp, read = false, timeoutMs = 2000) =>
    assert.rejects(
      (async () => {
        const src = await FetchByteSource.open(`${base}${path}`, { timeoutMs });
        if (read) await src.read(1000, 50_000);
      })(),
      (e: unknown) =>
        e instanceof SlideError &&
        e.message.includes(`${base}${path}`) &&
        why.test(e.message) &&
        !e.message.includes('\n'),
    );
  await fails('/norange', /does not answer byte-range requests/);
  await fails('/missing', /HTTP 404/);
  await fails('/shifted', /server answered bytes 1001-51000 for 1000-50999/, true);
  await fails('/endless', /the server sent more/, true);
  await fails('/short', /got 49999/, true);
  await fails('/hang', /no answer within 300 ms/, false, 300);
  assert.ok(requests > 0);
});

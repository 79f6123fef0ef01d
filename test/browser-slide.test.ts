/**
 * `openSlideUrl` from `slideseg/browser` in a real browser: esbuild bundles the browser entry, a local server gives
 * the page and the sample SVS with byte-range support, and headless Chromium (Debian's /usr/bin/chromium) reads
 * OpenSlide's golden regions over HTTP, decoding the JPEG tiles with its own decoder. Pixels match OpenSlide 3.4.1's
 * `read_region` within JPEG decoder tolerance, as in Node (test/slide-openslide-parity.test.ts).
 */

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import { launchChromium } from './browser-helpers.ts';
import { fixture, ROOT } from './fixtures.ts';
import { compareRgba, readPng } from './slide-helpers.ts';

const SLIDE = readFileSync(fixture('slides', 'cmu-1-small-region.svs'));
const PROPERTIES = JSON.parse(
  readFileSync(fixture('openslide', 'cmu-1-small-region', 'properties.json'), 'utf8'),
);
const { regions } = JSON.parse(
  readFileSync(fixture('openslide', 'cmu-1-small-region', 'regions.json'), 'utf8'),
) as {
  regions: { file: string; x: number; y: number; level: number; width: number; height: number }[];
};
const GOLDEN = regions.filter((r) => existsSync(fixture('openslide', 'cmu-1-small-region', r.file)));

let server: Server;
let base = '';
let bytesServed = 0;

before(async () => {
  const bundle = await build({
    entryPoints: [join(ROOT, 'src', 'browser.ts')],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    globalName: 'slideseg',
    write: false,
    logLevel: 'silent',
    external: ['onnxruntime-web'],
  });
  const js = bundle.outputFiles[0]!.text;
  server = createServer((req, res) => {
    if (req.url === '/')
      return res
        .writeHead(200, { 'content-type': 'text/html' })
        .end('<!doctype html><script src="/slideseg.js"></script>');
    if (req.url === '/slideseg.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    if (req.url !== '/slide.svs') return res.writeHead(404).end();
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) return res.writeHead(200, { 'content-length': SLIDE.length }).end(SLIDE);
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), SLIDE.length - 1);
    bytesServed += end - start + 1;
    res
      .writeHead(206, {
        'content-range': `bytes ${start}-${end}/${SLIDE.length}`,
        'content-length': end - start + 1,
      })
      .end(SLIDE.subarray(start, end + 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

test('openSlideUrl reads OpenSlide golden regions of an SVS over HTTP in Chromium', async (t) => {
  assert.ok(GOLDEN.length >= 6, 'golden regions');
  const browser = await launchChromium(t);
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${base}/`);
  // The page code is a string: tsx's transform of a function here would reference helpers the page lacks.
  const out: {
    format: string;
    levels: { width: number; height: number }[];
    mpp: { x: number; y: number } | null;
    reads: { width: number; height: number; data: number[] }[];
    missing: string;
  } = await page.evaluate(`(async () => {
    const slide = await slideseg.openSlideUrl('/slide.svs');
    const reads = [];
    for (const r of ${JSON.stringify(GOLDEN)}) {
      const img = await slide.readRegion(r);
      reads.push({ width: img.width, height: img.height, data: Array.from(img.data) });
    }
    let missing = '';
    try { await slideseg.openSlideUrl('/nothing.svs'); } catch (e) { missing = e.message; }
    return { format: slide.format, levels: slide.levels, mpp: slide.mpp, reads, missing };
  })()`);
  assert.deepEqual(errors, [], 'page errors');
  assert.equal(out.format, 'aperio-svs');
  assert.deepEqual(
    out.levels.map((l) => [l.width, l.height]),
    PROPERTIES.level_dimensions,
  );
  assert.equal(out.mpp?.x, Number(PROPERTIES.properties['openslide.mpp-x']));
  for (const [i, r] of GOLDEN.entries()) {
    const got = out.reads[i]!;
    const actual = { width: got.width, height: got.height, data: Uint8Array.from(got.data) };
    const expected = await readPng(fixture('openslide', 'cmu-1-small-region', r.file));
    const d = compareRgba(actual, expected);
    assert.equal(d.alphaMismatch, 0, `${r.file}: alpha must match exactly`);
    assert.ok(
      d.bad <= d.compared * 0.001,
      `${r.file}: ${d.bad} of ${d.compared} pixels off by more than 2 (max ${d.maxDiff})`,
    );
  }
  assert.ok(
    bytesServed < SLIDE.length,
    `fetched ${bytesServed} of ${SLIDE.length} bytes: ranges, not the file`,
  );
  assert.match(out.missing, /nothing\.svs: HTTP 404/);
});

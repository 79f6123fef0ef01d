/**
 * What `slideseg view` serves: slides named directly, an inference output folder, a cohort folder of runs (slide
 * list, unique names, labels and polygons found even after the folder moved), clear errors for bad inputs, and the
 * CLI's usage errors (exit 2).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { inferSlide } from '../src/infer/index.ts';
import { collectSlides, startViewer } from '../src/view/index.ts';
import { fixture, ROOT } from './fixtures.ts';

const CMU = join(ROOT, 'samples', 'cmu-1-small-region.svs');
let dir: string;
let run: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'view-slides-'));
  run = join(dir, 'run');
  await inferSlide(CMU, {
    model: fixture('segformer', 'segformer-tiny-odd'),
    out: run,
    mpp: 4,
    tile: 128,
    overlap: 16,
    batch: 4,
    chunkSize: 128,
    decodeWorkers: 0,
    image: 'overview',
    log: null,
  });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('slides given directly: names from the file names, nothing else attached', async () => {
  const slides = await collectSlides([CMU, join(ROOT, 'samples', 'image.png')]);
  assert.deepEqual(
    slides.map((s) => [s.name, s.slide, s.labels, s.geojson]),
    [
      ['cmu-1-small-region', CMU, undefined, undefined],
      ['image', join(ROOT, 'samples', 'image.png'), undefined, undefined],
    ],
  );
});

test('a slide given by URL (HTTP range requests) serves the same tiles as the local file', async () => {
  const bytes = await readFile(CMU);
  // A static server with Range support, as object stores and web servers answer.
  const server = createServer((req, res) => {
    if (req.url !== '/slides/cmu-1-small-region.svs') {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (!m) {
      res.writeHead(200, { 'content-length': bytes.length, 'accept-ranges': 'bytes' }).end(bytes);
      return;
    }
    const start = Number(m[1]);
    const end = m[2] ? Math.min(Number(m[2]), bytes.length - 1) : bytes.length - 1;
    res
      .writeHead(206, {
        'content-range': `bytes ${start}-${end}/${bytes.length}`,
        'content-length': end - start + 1,
        'accept-ranges': 'bytes',
      })
      .end(bytes.subarray(start, end + 1));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slides/cmu-1-small-region.svs`;
  const remote = await startViewer({ slides: await collectSlides([url]) });
  const local = await startViewer({ slides: await collectSlides([CMU]) });
  try {
    for (const tile of ['cmu-1-small-region_files/12/1_2.jpeg', 'cmu-1-small-region_files/9/0_0.jpeg']) {
      const a = Buffer.from(await (await fetch(`${remote.url}slides/${tile}`)).arrayBuffer());
      const b = Buffer.from(await (await fetch(`${local.url}slides/${tile}`)).arrayBuffer());
      assert.ok(a.length > 1000 && a.equals(b), tile);
    }
  } finally {
    await remote.close();
    await local.close();
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
  }
});

test('an OME-Zarr given directly brings its labels as the overlay', async () => {
  const image = join(run, 'cmu-1-small-region.ome.zarr');
  const [s] = await collectSlides([image]);
  assert.equal(s!.slide, image);
  assert.equal(s!.labels, join(image, 'labels', 'segmentation'));
  const viewer = await startViewer({ slides: [s!] });
  try {
    assert.equal((await fetch(`${viewer.url}slides/cmu-1-small-region_labels.dzi`)).status, 200);
    const tile = await fetch(`${viewer.url}slides/cmu-1-small-region_labels_files/0/0_0.png`);
    assert.equal(tile.headers.get('content-type'), 'image/png');
  } finally {
    await viewer.close();
  }
});

test('a cohort folder moved elsewhere: one entry per run, labels and polygons found, names unique', async () => {
  const cohort = join(dir, 'cohort');
  await mkdir(cohort);
  await cp(run, join(cohort, 'a'), { recursive: true });
  await cp(run, join(cohort, 'b'), { recursive: true });
  const slides = await collectSlides([cohort]);
  assert.deepEqual(
    slides.map((s) => s.name),
    ['cmu-1-small-region', 'cmu-1-small-region-2'],
  );
  assert.equal(slides[0]!.slide, CMU, 'the original slide is still there: its tiles are served');
  assert.equal(slides[1]!.labels, join(cohort, 'b', 'cmu-1-small-region.ome.zarr', 'labels', 'segmentation'));
  assert.equal(slides[1]!.geojson, join(cohort, 'b', 'cmu-1-small-region.geojson'));
  const viewer = await startViewer({ slides });
  try {
    const api = (await (await fetch(`${viewer.url}api/slides`)).json()) as {
      labels: boolean;
      polygons: boolean;
    }[];
    assert.equal(api.length, 2);
    assert.ok(api.every((s: { labels: boolean; polygons: boolean }) => s.labels && s.polygons));
    assert.equal((await fetch(`${viewer.url}slides/cmu-1-small-region-2_labels.dzi`)).status, 200);
  } finally {
    await viewer.close();
  }
});

test('bad inputs: a clear error naming the path', async () => {
  await assert.rejects(collectSlides([join(dir, 'nope.svs')]), /nope\.svs: no such file or folder/);
  const empty = join(dir, 'empty');
  await mkdir(empty);
  await assert.rejects(collectSlides([empty]), /empty: folder holds no slide and no inference output/);
  await assert.rejects(
    collectSlides([join(ROOT, 'package.json')]).then((s) => startViewer({ slides: s })),
    /package\.json/,
  );
});

test('CLI: usage errors exit 2 with a one-line message; a busy port or a missing slide exit 1', async () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [join(ROOT, 'bin', 'slideseg.js'), 'view', ...args], { encoding: 'utf8' });
  const none = cli();
  assert.equal(none.status, 2);
  assert.match(none.stderr, /expected SLIDE/);
  const port = cli(CMU, '--port', '99999');
  assert.equal(port.status, 2);
  assert.match(port.stderr, /--port/);
  // A port in use: one line that says so.
  const viewer = await startViewer({ slides: await collectSlides([CMU]) });
  try {
    const busy = cli(CMU, '--port', new URL(viewer.url).port);
    assert.equal(busy.status, 1);
    assert.match(busy.stderr, /port \d+ on 127\.0\.0\.1 is in use \(pass --port 0/);
  } finally {
    await viewer.close();
  }
  const missing = cli(join(dir, 'missing.svs'), '--port', '0');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /missing\.svs/);
});

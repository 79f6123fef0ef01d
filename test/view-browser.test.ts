/**
 * `slideseg view` in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core
 * against the server on an inference output of the sample slide. The page loads without console errors; a Deep
 * Zoom tile equals `slideseg region` of the same area (JPEG tolerance); the label overlay shows the class colour
 * at a pixel known to be labelled (and the slide at opacity 0); the polygon layer draws; anything but the served
 * slides is a 404. A screenshot is saved to $SLIDESEG_ARTIFACTS (default: the test's temporary folder).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import * as zarr from 'zarrita';
import { type InferSummary, inferSlide } from '../src/infer/index.ts';
import { readNpy } from '../src/io/npy.ts';
import { OnnxSegmenter } from '../src/onnx/runtime.ts';
import { FolderStore } from '../src/slide/zarr/store.ts';
import {
  collectSlides,
  deepZoomGeometry,
  loadViewModel,
  startViewer,
  tileRect,
  type Viewer,
  type ViewModel,
} from '../src/view/index.ts';
import { launchChromium } from './browser-helpers.ts';
import { fixture, ROOT } from './fixtures.ts';

// Page-side code runs in the browser; the project has no DOM types, so the few browser globals it uses are declared.
declare const window: unknown;
declare const document: {
  getElementById(id: string): {
    getBoundingClientRect(): { left: number; top: number };
    width: number;
    height: number;
    getContext(kind: '2d'): {
      getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
    };
  };
};

/** The parts of the page's OpenSeadragon the checks use (the page exposes them as window.slideseg). */
interface PageWindow {
  slideseg: {
    state: { ready: boolean };
    viewer: {
      world: {
        getItemCount(): number;
        getItemAt(i: number): {
          getFullyLoaded(): boolean;
          imageToViewerElementCoordinates(p: unknown): { x: number; y: number };
        };
      };
    };
  };
  OpenSeadragon: { Point: new (x: number, y: number) => unknown };
}
const CMU = join(ROOT, 'samples', 'cmu-1-small-region.svs');
const NAME = 'cmu-1-small-region';
let dir: string;
let summary: InferSummary;
let viewer: Viewer;
let model: ViewModel;
const MODEL = fixture('segformer', 'segformer-tiny-odd');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'view-browser-'));
  summary = await inferSlide(CMU, {
    model: MODEL,
    out: join(dir, 'out'),
    mpp: 2,
    tile: 128,
    overlap: 32,
    batch: 4,
    chunkSize: 128,
    decodeWorkers: 0,
    log: null,
  });
  model = await loadViewModel(MODEL, 2, join(dir, 'onnx-cache'));
  viewer = await startViewer({ slides: await collectSlides([join(dir, 'out')]), model, log: () => {} });
});
after(async () => {
  await viewer?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A raw GET (no URL normalisation, unlike fetch): status and body. */
function get(path: string): Promise<{ status: number; body: Buffer; type: string }> {
  const { hostname, port } = new URL(viewer.url);
  return new Promise((ok, fail) => {
    const req = request({ host: hostname, port, path, method: 'GET' }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () =>
        ok({
          status: res.statusCode!,
          body: Buffer.concat(parts),
          type: String(res.headers['content-type']),
        }),
      );
    });
    req.on('error', fail);
    req.end();
  });
}

/** The viewer page in headless Chromium, recording console errors and failed requests. */
async function openPage(t: { after(fn: () => Promise<void>): void }) {
  const browser = await launchChromium(t);
  const page = await browser.newPage({ viewport: { width: 960, height: 640 } });
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  const failed: string[] = [];
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(viewer.url);
  return { page, errors, failed };
}

test('binds 127.0.0.1; only the served slides: traversal, absolute paths and other files are 404', async () => {
  assert.match(viewer.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  for (const path of [
    '/slides/../package.json',
    '/slides/..%2F..%2Fpackage.json',
    '/slides/%2e%2e/package.json.dzi',
    '/../../etc/passwd',
    '/etc/passwd',
    '//etc/passwd',
    '/slides//etc/passwd.dzi',
    '/slides/cmu-1-small-region_files/12/../../../../package.json',
    '/vendor/openseadragon/../../package.json',
    '/vendor/openseadragon/images/../../../package.json',
    '/slides/image.dzi', // samples/image.png exists but was not given
    `/slides/${NAME}.summary.json`,
    `/slides/${NAME}_files/99/0_0.jpeg`,
    `/slides/${NAME}_files/12/999_0.jpeg`,
    `/slides/${NAME}_files/12/0_0.png`,
    `/slides/${NAME}_labels_files/12/0_0.jpeg`,
  ]) {
    const r = await get(path);
    assert.equal(r.status, 404, `${path} → ${r.status}`);
    assert.ok(!r.body.toString().includes('"name"'), `${path} leaked content`);
  }
  assert.equal((await get(`/slides/${NAME}.dzi`)).status, 200);
  assert.equal((await get(`/slides/${NAME}.geojson`)).status, 200);
});

test('a Deep Zoom tile equals `slideseg region` of the same area (JPEG tolerance)', async () => {
  const dzi = (await get(`/slides/${NAME}.dzi`)).body.toString();
  const W = Number(/Width="(\d+)"/.exec(dzi)![1]);
  const H = Number(/Height="(\d+)"/.exec(dzi)![1]);
  const g = deepZoomGeometry(W, H);
  const top = g.levels.length - 1;
  const rect = tileRect(g, top, 2, 3)!;
  assert.deepEqual([rect.x, rect.y, rect.width, rect.height], [2 * 254 - 1, 3 * 254 - 1, 256, 256]);
  const tile = await get(`/slides/${NAME}_files/${top}/2_3.jpeg`);
  assert.equal(tile.type, 'image/jpeg');
  const png = join(dir, 'region.png');
  execFileSync(process.execPath, [
    join(ROOT, 'bin', 'slideseg.js'),
    'region',
    CMU,
    ...['--x', String(rect.x), '--y', String(rect.y), '--level', '0'],
    ...['--width', String(rect.width), '--height', String(rect.height), '--png', png],
  ]);
  const a = await sharp(tile.body).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const b = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([a.info.width, a.info.height], [b.info.width, b.info.height]);
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i]! - b.data[i]!);
  const mean = sum / a.data.length;
  assert.ok(mean < 4, `mean abs difference ${mean}`);
  // A coarser level: the whole slide in one tile, same size as the level.
  const one = g.levels.findIndex(([w, h]) => Math.max(w, h) <= 254 && Math.max(w, h) > 127);
  const meta = await sharp((await get(`/slides/${NAME}_files/${one}/0_0.jpeg`)).body).metadata();
  assert.deepEqual([meta.width, meta.height], g.levels[one]);
});

test('in Chromium: no console errors, overlay shows the class colour at a labelled pixel, polygons draw', async (t) => {
  // A label pixel in the middle of a 7×7 block of one class (grid coordinates), and that class's colour.
  const arr = await zarr.open(new FolderStore(join(summary.outputs.labels, '0')), { kind: 'array' });
  const labels = ((await zarr.get(arr)) as { data: Uint8Array }).data;
  const { width: gw, height: gh } = summary.grid;
  let spot: { x: number; y: number; v: number } | null = null;
  for (let y = 3; y < gh - 3 && !spot; y += 2) {
    for (let x = 3; x < gw - 3 && !spot; x += 2) {
      const v = labels[y * gw + x]!;
      if (v === 0) continue;
      let same = true;
      for (let dy = -3; dy <= 3 && same; dy++)
        for (let dx = -3; dx <= 3 && same; dx++) same = labels[(y + dy) * gw + x + dx] === v;
      if (same) spot = { x, y, v };
    }
  }
  assert.ok(spot, 'a labelled block exists');
  const api = JSON.parse((await get('/api/slides')).body.toString());
  const cls = api[0].classes.find((c: { label: number }) => c.label === spot!.v);
  const f = api[0].width / gw;

  const { page, errors, failed } = await openPage(t);
  const settled = () =>
    page.waitForFunction(
      () => {
        const w = (window as unknown as PageWindow).slideseg;
        const world = w.viewer.world;
        if (!w.state.ready || world.getItemCount() < 2) return false;
        for (let i = 0; i < world.getItemCount(); i++) if (!world.getItemAt(i).getFullyLoaded()) return false;
        return true;
      },
      null,
      { timeout: 60_000 },
    );
  await settled();
  // Legend: the classes with their areas from summary.json.
  const legend = await page.locator('#legend li').allTextContents();
  assert.equal(legend.length, summary.classes.length);
  for (const [i, name] of summary.classes.entries()) {
    assert.ok(legend[i]!.includes(name) && legend[i]!.includes((summary.areas[name]!.um2 / 1e6).toFixed(3)));
  }
  const pixelAt = async (opacity: number) => {
    await page.locator('#opacity').fill(String(opacity));
    await page.waitForTimeout(300);
    await settled();
    const p = await page.evaluate(
      ([x, y]) => {
        const win = window as unknown as PageWindow;
        const item = win.slideseg.viewer.world.getItemAt(0);
        const pt = item.imageToViewerElementCoordinates(new win.OpenSeadragon.Point(x!, y!));
        const box = document.getElementById('viewer')!.getBoundingClientRect();
        return [Math.round(box.left + pt.x), Math.round(box.top + pt.y)];
      },
      [(spot!.x + 0.5) * f, (spot!.y + 0.5) * f],
    );
    const shot = await page.screenshot({ clip: { x: p[0]! - 1, y: p[1]! - 1, width: 3, height: 3 } });
    const { data } = await sharp(shot).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    return [data[12]!, data[13]!, data[14]!];
  };
  const full = await pixelAt(1);
  for (let c = 0; c < 3; c++)
    assert.ok(Math.abs(full[c]! - cls.rgba[c]) <= 6, `overlay ${full} vs ${cls.rgba}`);
  const none = await pixelAt(0);
  assert.ok(
    Math.abs(none[0]! - cls.rgba[0]) + Math.abs(none[1]! - cls.rgba[1]) + Math.abs(none[2]! - cls.rgba[2]) >
      30,
    `opacity 0 shows the slide (${none})`,
  );
  // Polygons: toggling the layer draws on the canvas.
  await page.locator('#opacity').fill('0.4');
  await page.locator('#polygons').check();
  await page.waitForFunction(() => {
    const c = document.getElementById('polygon-canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) return true;
    return false;
  });
  await settled();
  const artifacts = process.env.SLIDESEG_ARTIFACTS ?? dir;
  await mkdir(artifacts, { recursive: true });
  // Palette PNG: a screenshot small enough for the README.
  const screenshot = await sharp(await page.screenshot())
    .png({ palette: true, colours: 256 })
    .toBuffer();
  await writeFile(join(artifacts, 'view-cmu-1-small-region.png'), screenshot);
  assert.deepEqual(errors, [], 'console errors');
  assert.deepEqual(failed, [], 'failed requests');
});

/** Largest |a − b| over two equally long arrays. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('in-browser inference (onnxruntime-web, wasm): = slideseg predict ≤ 1e-4 on a fixture image; = ONNX Runtime on the visible region', async (t) => {
  // slideseg predict (TF.js on the checkpoint) on the fixture image.
  const image = join(MODEL, 'image0.png');
  const npy = join(dir, 'predict-logits.npy');
  execFileSync(
    process.execPath,
    [join(ROOT, 'bin', 'slideseg.js'), 'predict', '--model', MODEL, image, '--logits', npy],
    {
      stdio: 'ignore',
    },
  );
  const ref = await readNpy(npy);
  const { data: rgb, info } = await sharp(image).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const { page, errors, failed } = await openPage(t);
  await page.waitForFunction(
    () => (window as unknown as { slideseg: { state: { model: unknown } } }).slideseg.state.model,
  );
  type Logits = { dims: number[]; data: number[] };
  const got = (await page.evaluate(
    async ([px, w, h]) => {
      const win = window as unknown as {
        slideseg: {
          runModel(p: Uint8Array, w: number, h: number): Promise<{ dims: number[]; data: Float32Array }>;
        };
      };
      const r = await win.slideseg.runModel(new Uint8Array(px as number[]), w as number, h as number);
      return { dims: r.dims, data: Array.from(r.data) };
    },
    [Array.from(rgb), info.width, info.height] as const,
  )) as Logits;
  assert.deepEqual(got.dims, ref.shape);
  const d = maxDiff(got.data, ref.data as Float32Array);
  assert.ok(d <= 1e-4, `browser vs predict: max |Δlogit| ${d}`);

  // The visible region: the page's logits equal onnxruntime-node's on the same pixels and preprocessing.
  const pred = (await page.evaluate(async () => {
    const win = window as unknown as {
      slideseg: {
        predictVisible(): Promise<{
          x: number;
          y: number;
          width: number;
          height: number;
          mpp: number;
          logits: { dims: number[]; data: Float32Array };
        }>;
      };
    };
    const p = await win.slideseg.predictVisible();
    return { ...p, logits: { dims: p.logits.dims, data: Array.from(p.logits.data) }, labels: undefined };
  })) as { x: number; y: number; width: number; height: number; mpp: number; logits: Logits };
  assert.equal(pred.mpp, 2, 'runs at the inference run’s resolution');
  const region = await get(
    `/slides/${NAME}/region?x=${pred.x}&y=${pred.y}&width=${pred.width}&height=${pred.height}&mpp=${pred.mpp}`,
  );
  assert.equal(region.body.length, pred.width * pred.height * 4);
  const plane = pred.width * pred.height;
  const input = new Float32Array(3 * plane);
  const { scale, offset } = model.meta;
  for (let i = 0; i < plane; i++) {
    const a = region.body[4 * i + 3]!;
    for (let c = 0; c < 3; c++) {
      const v = region.body[4 * i + c]!;
      const px = a === 255 ? v : Math.round((v * a + 255 * (255 - a)) / 255);
      input[c * plane + i] = px * scale[c]! + offset[c]!;
    }
  }
  const ort = await OnnxSegmenter.load(model.onnx, { intraOpThreads: 1 });
  const node = await ort.run(input, [1, 3, pred.height, pred.width]);
  await ort.release();
  assert.deepEqual(pred.logits.dims, node.dims);
  const dv = maxDiff(pred.logits.data, node.data);
  assert.ok(dv <= 1e-4, `browser vs onnxruntime-node: max |Δlogit| ${dv}`);
  assert.deepEqual(errors, [], 'console errors');
  assert.deepEqual(failed, [], 'failed requests');
});

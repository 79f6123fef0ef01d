/**
 * `slideseg view`'s HTTP server. Routes (everything else, including any path with '..' or an unknown slide name,
 * is a 404; nothing is read from a path taken from the URL):
 *   /                                           the viewer page
 *   /api/slides                                 the served slides: size, mpp, label classes with areas
 *   /vendor/openseadragon/…                     OpenSeadragon from node_modules (script and button images)
 *   /slides/{name}.dzi                          Deep Zoom descriptor (OpenSlide deepzoom layout: 254 px, overlap 1)
 *   /slides/{name}_files/{level}/{col}_{row}.jpeg            slide tiles
 *   /slides/{name}_labels.dzi, /slides/{name}_labels_files/{level}/{col}_{row}.png   label overlay tiles
 *   /slides/{name}.geojson                      the polygons of an inference run
 *   /slides/{name}/region?x&y&width&height&mpp  raw RGBA of a region at an mpp (for in-browser inference)
 *   /api/model, /model/model.onnx               the model the page can run (with --model; null without)
 *   /vendor/ort/…                               onnxruntime-web (wasm) from node_modules
 */
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { openSlide } from '../slide/index.ts';
import type { Slide } from '../slide/types.ts';
import { type DeepZoomGeometry, deepZoomGeometry, dziXml, slideTileJpeg, tileRect } from './deepzoom.ts';
import { type LabelClass, LabelTiles } from './label-tiles.ts';
import type { ViewModel } from './model.ts';
import { viewerPage } from './page.ts';
import type { ViewSlide } from './slides.ts';

export interface ViewerOptions {
  slides: ViewSlide[];
  /** Default 127.0.0.1 (this machine only). */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** A model for in-browser inference (loadViewModel). */
  model?: ViewModel;
  /** Errors while serving a request (default: stderr). */
  log?: (line: string) => void;
}

export interface Viewer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

interface Served {
  info: ViewSlide;
  slide: Slide;
  geometry: DeepZoomGeometry;
  labels: LabelTiles | null;
}

const require = createRequire(import.meta.url);
const OSD_DIR = dirname(require.resolve('openseadragon/build/openseadragon/openseadragon.min.js'));
/** Largest region side the page may ask for (pixels at the requested mpp). */
const MAX_REGION = 2048;

/** Opens every slide (and its labels) and starts listening. */
export async function startViewer(o: ViewerOptions): Promise<Viewer> {
  const served = new Map<string, Served>();
  try {
    for (const info of o.slides) {
      const slide = await openSlide(info.slide, { workers: 0 });
      const { width, height } = slide.levels[0]!;
      served.set(info.name, {
        info,
        slide,
        geometry: deepZoomGeometry(width, height),
        labels: info.labels ? await LabelTiles.open(info.labels, width, height, info.labelsDownsample) : null,
      });
    }
  } catch (err) {
    for (const s of served.values()) await s.slide.close().catch(() => {});
    throw err;
  }
  const osdImages = new Set(await readdir(join(OSD_DIR, 'images')));
  // onnxruntime-web is an optional peer dependency, needed only for in-browser inference. Its wasm build (loader
  // script, module, binary) and, for browsers with WebGPU, its WebGPU build (the JSEP module and binary).
  let ortDir = '';
  let ortFiles = new Set<string>();
  if (o.model) {
    try {
      ortDir = dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
    } catch {
      for (const s of served.values()) await s.slide.close().catch(() => {});
      throw new Error(
        'in-browser inference needs the optional package onnxruntime-web (npm install onnxruntime-web)',
      );
    }
    ortFiles = new Set(
      (await readdir(ortDir)).filter((f) =>
        /^(ort\.(wasm|webgpu)\.min\.js|ort-wasm-simd-threaded(\.jsep)?\.(mjs|wasm))$/.test(f),
      ),
    );
  }
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const page = viewerPage();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, 'text/plain', 'method not allowed');
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/' || path === '/index.html') return send(res, 200, 'text/html; charset=utf-8', page);
    if (path === '/api/slides') {
      return send(res, 200, 'application/json', JSON.stringify([...served.values()].map(describe)));
    }
    if (path === '/vendor/openseadragon/openseadragon.min.js') {
      return stream(res, join(OSD_DIR, 'openseadragon.min.js'), 'text/javascript');
    }
    const img = /^\/vendor\/openseadragon\/images\/([a-z_]+\.png)$/.exec(path);
    if (img && osdImages.has(img[1]!)) return stream(res, join(OSD_DIR, 'images', img[1]!), 'image/png');
    const ortFile = /^\/vendor\/ort\/([a-z.-]+)$/.exec(path);
    if (ortFile && ortFiles.has(ortFile[1]!)) {
      const f = ortFile[1]!;
      const type = f.endsWith('.wasm') ? 'application/wasm' : 'text/javascript';
      return stream(res, join(ortDir, f), type);
    }
    if (path === '/api/model')
      return send(res, 200, 'application/json', JSON.stringify(o.model?.meta ?? null));
    if (path === '/model/model.onnx' && o.model) return stream(res, o.model.onnx, 'application/octet-stream');
    const region = /^\/slides\/([A-Za-z0-9._-]+)\/region$/.exec(path);
    if (region) {
      const s = served.get(region[1]!);
      if (!s) return notFound(res);
      return sendRegion(res, s.slide, new URLSearchParams((req.url ?? '').split('?')[1] ?? ''));
    }
    const m =
      /^\/slides\/([A-Za-z0-9._-]+?)(_labels)?(?:\.(dzi|geojson)|_files\/(\d+)\/(\d+)_(\d+)\.(jpeg|png))$/.exec(
        path,
      );
    const s = m ? served.get(m[1]!) : undefined;
    if (!m || !s) return notFound(res);
    const labels = m[2] !== undefined;
    if (labels && !s.labels) return notFound(res);
    const { width, height } = s.geometry;
    if (m[3] === 'dzi')
      return send(res, 200, 'application/xml', dziXml(width, height, labels ? 'png' : 'jpeg'));
    if (m[3] === 'geojson') {
      if (labels || !s.info.geojson) return notFound(res);
      return stream(res, s.info.geojson, 'application/geo+json');
    }
    if ((m[7] === 'png') !== labels) return notFound(res);
    const rect = tileRect(s.geometry, Number(m[4]), Number(m[5]), Number(m[6]));
    if (!rect) return notFound(res);
    const body = labels ? await s.labels!.tilePng(rect) : await slideTileJpeg(s.slide, rect);
    return send(res, 200, labels ? 'image/png' : 'image/jpeg', body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      log(`slideseg view: ${req.url}: ${err.message}`);
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error');
      else res.destroy();
    });
  });
  const host = o.host ?? '127.0.0.1';
  try {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(o.port ?? 0, host, () => {
        server.off('error', fail);
        ok();
      });
    });
  } catch (err) {
    for (const x of served.values()) await x.slide.close().catch(() => {});
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE')
      throw new Error(`port ${o.port} on ${host} is in use (pass --port 0 for any free port)`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
      throw new Error(`cannot listen on ${host}: no such address`);
    throw err;
  }
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shownHost}:${addr.port}/`,
    server,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      for (const x of served.values()) await x.slide.close().catch(() => {});
    },
  };
}

/** Raw RGBA of a level-0 rectangle resampled to `mpp` (bad parameters: 400). */
async function sendRegion(res: ServerResponse, slide: Slide, q: URLSearchParams): Promise<void> {
  const [x, y, width, height] = ['x', 'y', 'width', 'height'].map((k) => Number(q.get(k)));
  const mpp = Number(q.get('mpp'));
  const ints = [x, y, width, height].every((v) => Number.isSafeInteger(v));
  if (!ints || width! < 1 || height! < 1 || width! > MAX_REGION || height! > MAX_REGION || !(mpp > 0)) {
    return send(
      res,
      400,
      'text/plain',
      `region needs integer x, y, width, height (1-${MAX_REGION}) and mpp > 0`,
    );
  }
  if (!slide.mpp) return send(res, 400, 'text/plain', 'the slide does not state its resolution (mpp)');
  const img = await slide.readRegionAtMpp({ x: x!, y: y!, mpp, width: width!, height: height! });
  res.setHeader('x-width', String(img.width));
  res.setHeader('x-height', String(img.height));
  return send(
    res,
    200,
    'application/octet-stream',
    Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length),
  );
}

function describe(s: Served): Record<string, unknown> {
  const summary = s.info.summary as
    | { areas?: Record<string, { label: number; um2: number }>; mpp?: number; classes?: string[] }
    | undefined;
  const areaOf = new Map(Object.values(summary?.areas ?? {}).map((a) => [a.label, a.um2]));
  const classes = (s.labels?.classes ?? []).map((c: LabelClass) => ({
    ...c,
    um2: areaOf.get(c.label) ?? null,
  }));
  return {
    name: s.info.name,
    width: s.geometry.width,
    height: s.geometry.height,
    mpp: s.slide.mpp?.x ?? null,
    /** The resolution the labels were predicted at: in-browser inference runs there too. */
    predictedMpp: typeof s.info.summary?.mpp === 'number' ? s.info.summary.mpp : null,
    labels: s.labels !== null,
    polygons: s.info.geojson !== undefined,
    classes,
  };
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function notFound(res: ServerResponse): void {
  send(res, 404, 'text/plain', 'not found');
}

function stream(res: ServerResponse, file: string, type: string): Promise<void> {
  return new Promise((ok, fail) => {
    const rs = createReadStream(file);
    rs.once('open', () => {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' });
      if (res.req.method === 'HEAD') {
        rs.destroy();
        res.end();
        ok();
        return;
      }
      rs.pipe(res);
    });
    rs.once('error', fail);
    rs.once('end', () => ok());
  });
}

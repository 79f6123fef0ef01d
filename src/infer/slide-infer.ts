/**
 * Whole-slide inference: tissue mask → grid of overlapping tiles at the target resolution (only where there is
 * tissue) → model → probabilities blended with the smooth window → argmax → OME-Zarr label image, chunk by chunk.
 *
 * Memory is bounded by the tile pipeline, not the slide: the output grid is processed in vertical stripes of at
 * most `stripeWidth` pixels, each top to bottom in bands one chunk high. Only the bands that pending tiles still
 * touch hold probability accumulators; a band is argmaxed and handed to the label writer as soon as no later tile
 * can reach it. Tiles straddling a stripe border are run once for each stripe (counted in the summary), which
 * keeps memory independent of both slide dimensions. Reads run ahead of the model (bounded prefetch; decoding in
 * the slide's worker pool) and the next batch starts in ONNX Runtime while the previous one is blended.
 *
 * Label values are class index + 1; 0 marks pixels no tile covered (background outside the tissue mask).
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import sharp from 'sharp';
import * as zarr from 'zarrita';
import { detectTissue } from '../patching/tissue.ts';
import { openSlide } from '../slide/index.ts';
import type { RGBAImage, Slide } from '../slide/types.ts';
import { FolderStore } from '../slide/zarr/store.ts';
import { overlay } from '../viz/masks.ts';
import { classColour } from '../viz/palette.ts';
import { writePNG } from '../viz/png.ts';
import { OmeZarrImageWriter, overviewLevel } from './omezarr-image-writer.ts';
import { createLabelWriter, type OmeZarrLabelWriter } from './omezarr-writer.ts';
import { type PolygonClass, type PolygonMode, PolygonStreamer } from './polygons.ts';
import { blendWindow, tileOrigins } from './sliding.ts';
import { upsampledSoftmax } from './tile-probs.ts';
import { type InferBackend, loadTileRunner, type TileLogits, type TileRunner } from './tile-runner.ts';
import { accumulateViewHWC, isIdentity, type TestTimeAugmentation, ttaViews, viewPixelsNCHW } from './tta.ts';

export interface InferProgress {
  tilesDone: number;
  tilesTotal: number;
  chunksWritten: number;
  tilesPerSecond: number;
  etaSeconds: number;
}

export interface InferSlideOptions {
  /** Checkpoint folder (config.json + safetensors) or an .onnx file. */
  model: string;
  /** Output folder. */
  out: string;
  /** Output resolution in µm per pixel (default 0.5). */
  mpp?: number;
  tile?: number;
  overlap?: number;
  batch?: number;
  /** Test-time augmentation (default none): 'flip' runs 4 views of every tile, 'd4' 8. */
  tta?: TestTimeAugmentation;
  backend?: InferBackend;
  resume?: boolean;
  /** Base name of the outputs (default: the slide's file name without extension). */
  name?: string;
  /** Level-0 µm per pixel when the slide does not say (or to override it). */
  slideMpp?: number;
  /** 'auto' (default): tiles only where the tissue mask has tissue; 'all': every tile. */
  tissue?: 'auto' | 'all';
  /** Label chunk edge (default 512). */
  chunkSize?: number;
  /** Widest stripe of the output grid processed at once (default 8192 px; rounded to chunks). */
  stripeWidth?: number;
  /** Tiles read ahead of the model (default 3 × batch). */
  prefetch?: number;
  /** Decode workers of the slide reader (default 'auto'). */
  decodeWorkers?: number | 'auto';
  /**
   * Decoded-block cache of the slide reader, in bytes. Default: what one row of tiles across a stripe reads (so a
   * block shared by neighbouring tiles is decoded once), at least 8 MiB and at most 64 MiB — sized by the tile
   * pipeline, never by the slide.
   */
  cacheBytes?: number;
  /**
   * Longest side of the label overview behind the overlay PNG (and of an overview-only image; default 2048). The
   * overview is downsampled on the fly while the labels are read back, so its size, not the slide's, sets the
   * memory of the output stage.
   */
  overviewSize?: number;
  /**
   * The OME-Zarr image beneath the labels: 'full' (default) the slide at the label grid's resolution with its
   * pyramid; 'overview' only the pyramid levels whose longest side is at most `overviewSize` (labels stay full).
   */
  image?: 'full' | 'overview';
  /** 2 (default): Zarr v2 / OME-NGFF 0.4; 3: Zarr v3 / OME-NGFF 0.5. */
  zarrFormat?: 2 | 3;
  /** GeoJSON polygons: 'objects' (default: one feature per connected region), 'classes' (one per class), 'none'. */
  polygons?: PolygonMode;
  /** Decimals of the GeoJSON coordinates (level-0 pixels; default 2). */
  polygonPrecision?: number;
  /** Douglas–Peucker tolerance of the polygons in µm (default 0: exact pixel outlines of the label grid). */
  polygonSimplify?: number;
  /** ONNX Runtime threads (default: all cores). */
  threads?: number;
  /** Stop between batches (chunks already written stay; resume continues from them). */
  signal?: AbortSignal;
  onProgress?: (p: InferProgress) => void;
  /** Called for every tile the model ran on: its output-grid origin and the level-0 region it was read from. */
  onTile?: (t: { x: number; y: number; level0X: number; level0Y: number; level0Size: number }) => void;
  /** Progress lines (default: stderr, at most once a second). Pass null for silence. */
  log?: ((line: string) => void) | null;
  /** Use this runner instead of loading `model` (lets cohorts reuse one session). */
  runner?: TileRunner;
}

export interface InferSummary {
  slide: string;
  name: string;
  format: string;
  slideWidth: number;
  slideHeight: number;
  slideMpp: number;
  mpp: number;
  grid: { width: number; height: number; chunkSize: number };
  tile: number;
  overlap: number;
  tta: TestTimeAugmentation;
  batch: number;
  backend: InferBackend;
  classes: string[];
  /** Per class: label value, pixel count at the output mpp and area in µm² (pixels × mpp²). */
  areas: Record<string, { label: number; pixels: number; um2: number }>;
  /** Pixels no tile covered (label 0). */
  unlabelledPixels: number;
  tiles: {
    grid: number;
    tissue: number;
    computed: number;
    /** Extra runs of tiles that straddle a stripe border. */
    recomputedAtStripeBorders: number;
    skippedResumed: number;
  };
  chunks: { written: number; resumed: number; total: number };
  timings: { tissueSeconds: number; inferenceSeconds: number; outputsSeconds: number; totalSeconds: number };
  tilesPerSecond: number;
  outputs: {
    image: string;
    labels: string;
    overlay: string;
    /** Not written when `polygons` is 'none'. */
    geojson: string;
    summary: string;
  };
  /** The NGFF image beneath the labels: mode and its levels. */
  image: {
    mode: 'full' | 'overview';
    zarrFormat: 2 | 3;
    levels: { width: number; height: number; mpp: number }[];
  };
  /** GeoJSON: mode, features written, connected regions traced. */
  polygons: { mode: PolygonMode; features: number; objects: number };
}

interface TileJob {
  x: number;
  y: number;
}

interface Band {
  acc: Float32Array;
  wsum: Float32Array;
}

export class InferAbortedError extends Error {
  override name = 'InferAbortedError';
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer, got ${v}`);
  return v;
}

/** Summed-area table of a 0/1 mask, for "any tissue in this rectangle" queries. */
function integral(mask: Uint8Array, w: number, h: number): Int32Array {
  const s = new Int32Array((w + 1) * (h + 1));
  for (let y = 0; y < h; y++) {
    let row = 0;
    for (let x = 0; x < w; x++) {
      row += mask[y * w + x]! ? 1 : 0;
      s[(y + 1) * (w + 1) + x + 1] = s[y * (w + 1) + x + 1]! + row;
    }
  }
  return s;
}

/** RGBA tile → NCHW float32 (rescale + normalise), composited over white where transparent (outside the slide). */
function fillPixels(
  img: RGBAImage,
  tile: number,
  dst: Float32Array,
  offsetItem: number,
  runner: TileRunner,
): void {
  const plane = tile * tile;
  const base = offsetItem * 3 * plane;
  const d = img.data;
  const [s0, s1, s2] = runner.scale;
  const [o0, o1, o2] = runner.offset;
  for (let y = 0; y < tile; y++) {
    for (let x = 0; x < tile; x++) {
      const q = y * tile + x;
      let r = 255;
      let g = 255;
      let b = 255;
      if (x < img.width && y < img.height) {
        const p = (y * img.width + x) * 4;
        const a = d[p + 3]!;
        if (a === 255) {
          r = d[p]!;
          g = d[p + 1]!;
          b = d[p + 2]!;
        } else {
          const k = 255 - a;
          r = Math.round((d[p]! * a + 255 * k) / 255);
          g = Math.round((d[p + 1]! * a + 255 * k) / 255);
          b = Math.round((d[p + 2]! * a + 255 * k) / 255);
        }
      }
      dst[base + q] = r * s0 + o0;
      dst[base + plane + q] = g * s1 + o1;
      dst[base + 2 * plane + q] = b * s2 + o2;
    }
  }
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, path);
}

/** Name of a slide's outputs: its file name without extension(s). */
export function slideBaseName(path: string): string {
  let b = basename(path.replace(/[/\\]+$/, ''));
  for (let i = 0; i < 2; i++) {
    const e = extname(b);
    if (e && /^\.(svs|tif|tiff|ome|zarr|ndpi|png|jpe?g|mrxs|scn|bif|vms)$/i.test(e))
      b = b.slice(0, -e.length);
  }
  return b.replace(/[^A-Za-z0-9._-]/g, '_') || 'slide';
}

/** Reads a tile of the output grid: a level-0 window scaled to tile × tile pixels at the target resolution. */
function tileReader(slide: Slide, ds: number, mpp: number, useSlideMpp: boolean) {
  return async (ox: number, oy: number, tile: number): Promise<RGBAImage> => {
    const x = Math.round(ox * ds);
    const y = Math.round(oy * ds);
    if (Math.abs(ds - 1) < 1e-9) return slide.readRegion({ x, y, level: 0, width: tile, height: tile });
    if (useSlideMpp) return slide.readRegionAtMpp({ x, y, mpp, width: tile, height: tile });
    const level = slide.getBestLevelForDownsample(ds);
    const lds = slide.levels[level]!.downsample;
    const size = Math.ceil((tile * ds) / lds);
    const region = await slide.readRegion({ x, y, level, width: size, height: size });
    const data = await sharp(region.data, { raw: { width: size, height: size, channels: 4 } })
      .resize({ width: tile, height: tile, fit: 'fill', kernel: 'linear' })
      .raw()
      .toBuffer();
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: tile, height: tile };
  };
}

/**
 * Default decoded-block cache budget: the source pixels (RGBA) of one row of tiles across a stripe at the level the
 * tiles are read from, plus two 512-px blocks of slack each way, clamped to [8, 64] MiB. Reads the slide's header
 * only (no decode workers).
 */
async function readCacheBudget(
  slidePath: string,
  g: { mpp: number; slideMpp?: number; tile: number; stripe: number },
): Promise<number> {
  const probe = await openSlide(slidePath, { cacheBytes: 0 });
  try {
    const slideMpp = g.slideMpp ?? probe.mpp?.x ?? g.mpp;
    const ds = g.mpp / slideMpp;
    const level = probe.getBestLevelForDownsample(ds);
    const perOutput = Math.max(1, ds / probe.levels[level]!.downsample);
    const gridWidth = probe.levels[0]!.width / ds;
    const w = (Math.min(g.stripe, gridWidth) + g.tile) * perOutput + 1024;
    const h = g.tile * perOutput + 1024;
    return Math.min(64 * 2 ** 20, Math.max(8 * 2 ** 20, Math.ceil(4 * w * h)));
  } finally {
    await probe.close();
  }
}

/** Segments a whole slide; see the module comment. Returns (and writes) the summary. */
export async function inferSlide(slidePath: string, o: InferSlideOptions): Promise<InferSummary> {
  const t0 = performance.now();
  const mpp = o.mpp ?? 0.5;
  if (!(mpp > 0)) throw new Error(`mpp must be positive, got ${mpp}`);
  const tile = positiveInt('tile', o.tile ?? 512);
  const overlap = o.overlap ?? 64;
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= tile)
    throw new Error(`overlap must be an integer in [0, tile), got ${overlap}`);
  const batch = positiveInt('batch', o.batch ?? 1);
  const views = ttaViews(o.tta);
  const cs = positiveInt('chunkSize', o.chunkSize ?? 512);
  const stripeChunks = Math.max(1, Math.floor((o.stripeWidth ?? 8192) / cs));
  const prefetch = Math.max(batch, o.prefetch ?? 3 * batch);
  const name = o.name ?? slideBaseName(slidePath);
  const zarrFormat = o.zarrFormat ?? 2;
  if (zarrFormat !== 2 && zarrFormat !== 3) throw new Error(`zarrFormat must be 2 or 3, got ${zarrFormat}`);
  const imageMode = o.image ?? 'full';
  if (imageMode !== 'full' && imageMode !== 'overview')
    throw new Error(`image must be full or overview, got ${imageMode}`);
  const polygonMode = o.polygons ?? 'objects';
  if (!['none', 'classes', 'objects'].includes(polygonMode))
    throw new Error(`polygons must be none, classes or objects, got ${polygonMode}`);
  const precision = o.polygonPrecision ?? 2;
  if (!Number.isInteger(precision) || precision < 0 || precision > 10)
    throw new Error(`polygon precision must be an integer in [0, 10], got ${precision}`);
  const simplifyUm = o.polygonSimplify ?? 0;
  if (!(simplifyUm >= 0)) throw new Error(`polygon simplification must be >= 0 µm, got ${simplifyUm}`);
  const overviewSize = positiveInt('overviewSize', o.overviewSize ?? 2048);
  const log = o.log === null ? () => {} : (o.log ?? ((line: string) => process.stderr.write(`${line}\n`)));

  await mkdir(o.out, { recursive: true });
  // libvips' operation cache (process-wide, up to 50 MB) would keep every decoded JPEG block and resized tile:
  // here each is used once and the slide reader keeps its own bounded block cache, so it only grows memory.
  sharp.cache(false);
  const cacheBytes =
    o.cacheBytes ??
    (await readCacheBudget(slidePath, { mpp, slideMpp: o.slideMpp, tile, stripe: stripeChunks * cs }));
  const slide = await openSlide(slidePath, { workers: o.decodeWorkers ?? 'auto', cacheBytes });
  const ownRunner = !o.runner;
  let runner: TileRunner | undefined = o.runner;
  try {
    const slideMpp = o.slideMpp ?? slide.mpp?.x;
    if (!slideMpp)
      throw new Error(`${slidePath}: the slide does not state its resolution (mpp); pass --slide-mpp`);
    const W0 = slide.levels[0]!.width;
    const H0 = slide.levels[0]!.height;
    const ds = mpp / slideMpp;
    const W = Math.max(1, Math.round(W0 / ds));
    const H = Math.max(1, Math.round(H0 / ds));
    runner ??= await loadTileRunner(o.model, {
      backend: o.backend,
      cacheDir: join(o.out, '.cache'),
      threads: o.threads,
    });
    const C = runner.numLabels;
    if (C > 254) throw new Error(`${o.model}: ${C} classes do not fit 8-bit labels`);

    // Tissue → the tiles to run.
    const tTissue = performance.now();
    const stride = tile - overlap;
    const xs = tileOrigins(W, tile, stride);
    const ys = tileOrigins(H, tile, stride);
    let hasTissue = (_x: number, _y: number) => true;
    if ((o.tissue ?? 'auto') === 'auto') {
      const tissue = await detectTissue(slide);
      const sat = integral(tissue.mask, tissue.width, tissue.height);
      const fx = tissue.width / W;
      const fy = tissue.height / H;
      const tw = tissue.width + 1;
      hasTissue = (x, y) => {
        const x0 = Math.max(0, Math.floor(x * fx));
        const y0 = Math.max(0, Math.floor(y * fy));
        const x1 = Math.min(tissue.width, Math.ceil((x + tile) * fx));
        const y1 = Math.min(tissue.height, Math.ceil((y + tile) * fy));
        if (x1 <= x0 || y1 <= y0) return false;
        return sat[y1 * tw + x1]! - sat[y0 * tw + x1]! - sat[y1 * tw + x0]! + sat[y0 * tw + x0]! > 0;
      };
    }
    const tissueTiles: TileJob[] = [];
    for (const y of ys) for (const x of xs) if (hasTissue(x, y)) tissueTiles.push({ x, y });
    const tissueSeconds = (performance.now() - tTissue) / 1000;

    const labelNames = ['unlabelled', ...runner.classNames];
    const colors: Record<number, [number, number, number, number]> = { 0: [0, 0, 0, 0] };
    for (let c = 0; c < C; c++)
      colors[c + 1] = [...classColour(c + 1), 255] as [number, number, number, number];
    const imagePath = join(o.out, `${name}.ome.zarr`);
    // A fresh run starts from an empty store (the other zarr format's metadata would shadow this run's).
    if (!o.resume) await rm(imagePath, { recursive: true, force: true });
    const w: OmeZarrLabelWriter = await createLabelWriter({
      imagePath,
      name: 'segmentation',
      width: W,
      height: H,
      chunkSize: cs,
      classNames: labelNames,
      colors,
      scale: { x: mpp, y: mpp, unit: 'micrometer' },
      zarrFormat,
      resume: o.resume ?? false,
    });
    // The image the labels belong to (NGFF hangs labels off an image): the slide on the label grid, its level-0
    // chunks written beside their labels.
    const imageWriter = await OmeZarrImageWriter.create(slide, {
      path: imagePath,
      name,
      width: W,
      height: H,
      downsample: ds,
      mpp,
      chunkSize: cs,
      firstLevel: imageMode === 'overview' ? overviewLevel(W, H, cs, overviewSize) : 0,
      zarrFormat,
      resume: o.resume ?? false,
      signal: o.signal,
    });
    const cols = Math.ceil(W / cs);
    const rows = Math.ceil(H / cs);
    const chunkDone = (cx: number, cy: number) =>
      w.isTileDone(cx * cs, cy * cs, Math.min(cs, W - cx * cs), Math.min(cs, H - cy * cs));

    const window = blendWindow(tile, overlap);
    const read = tileReader(slide, ds, mpp, o.slideMpp === undefined);
    const tInfer = performance.now();
    let tilesDone = 0;
    let computed = 0;
    let recomputed = 0;
    let skippedResumed = 0;
    let chunksWritten = 0;
    // Work estimate for progress: every tissue tile of every stripe it touches.
    const stripes: [number, number][] = [];
    for (let c0 = 0; c0 < cols; c0 += stripeChunks)
      stripes.push([c0 * cs, Math.min(W, (c0 + stripeChunks) * cs)]);
    const stripeTiles = stripes.map(([X0, X1]) => tissueTiles.filter((t) => t.x + tile > X0 && t.x < X1));
    const tilesTotal = stripeTiles.reduce((a, s) => a + s.length, 0);
    let lastLog = 0;
    const report = (force = false) => {
      const elapsed = (performance.now() - tInfer) / 1000;
      const rate = computed / Math.max(elapsed, 1e-9);
      const left = tilesTotal - tilesDone;
      const p: InferProgress = {
        tilesDone,
        tilesTotal,
        chunksWritten,
        tilesPerSecond: rate,
        etaSeconds: rate > 0 ? left / rate : Number.POSITIVE_INFINITY,
      };
      o.onProgress?.(p);
      const now = performance.now();
      if (force || now - lastLog > 1000) {
        lastLog = now;
        const pct = tilesTotal ? ((100 * tilesDone) / tilesTotal).toFixed(1) : '100.0';
        const eta = Number.isFinite(p.etaSeconds) ? `${p.etaSeconds.toFixed(0)}s` : '?';
        log(
          `infer ${name}: ${tilesDone}/${tilesTotal} tiles (${pct}%) ${rate.toFixed(2)} tiles/s ETA ${eta}`,
        );
      }
    };
    const pendingWrites = new Set<Promise<void>>();
    const track = (p: Promise<void>) => {
      pendingWrites.add(p);
      p.then(
        () => pendingWrites.delete(p),
        () => {},
      );
    };

    // Flushed bands are zeroed and reused, and the two batch input buffers alternate: the steady state allocates
    // (almost) nothing per tile, so the garbage — and the heap the collector lets grow — does not scale with the
    // number of tiles.
    const freeBands: Band[] = [];
    const takeBand = (pixels: number): Band => {
      const i = freeBands.findIndex((b) => b.wsum.length === pixels);
      if (i < 0) return { acc: new Float32Array(pixels * C), wsum: new Float32Array(pixels) };
      const b = freeBands.splice(i, 1)[0]!;
      b.acc.fill(0);
      b.wsum.fill(0);
      return b;
    };
    const inputs: Float32Array[] = [];
    // With TTA, each input buffer has a twin holding the current view of its tiles.
    const viewInputs: Float32Array[] = [];
    let nextInput = 0;
    const inputBuffer = (n: number): { pixels: Float32Array; view: Float32Array | undefined } => {
      const k = nextInput;
      nextInput ^= 1;
      const len = n * 3 * tile * tile;
      if (inputs[k]?.length !== len) inputs[k] = new Float32Array(len);
      if (views.length > 1 && viewInputs[k]?.length !== len) viewInputs[k] = new Float32Array(len);
      return { pixels: inputs[k]!, view: viewInputs[k] };
    };

    for (let s = 0; s < stripes.length; s++) {
      const [X0, X1] = stripes[s]!;
      const sw = X1 - X0;
      const c0 = X0 / cs;
      const c1 = Math.ceil(X1 / cs);
      const bands = new Map<number, Band>();
      const bandOf = (r: number): Band => {
        let b = bands.get(r);
        if (!b) {
          const h = Math.min(cs, H - r * cs);
          b = takeBand(sw * h);
          bands.set(r, b);
        }
        return b;
      };
      const rowDone = (r: number) => {
        for (let cx = c0; cx < c1; cx++) if (!chunkDone(cx, r)) return false;
        return true;
      };
      // Tiles whose every chunk (in this stripe) is on disk already are not run again.
      const jobs: TileJob[] = [];
      for (const t of stripeTiles[s]!) {
        let done = true;
        for (let r = Math.floor(t.y / cs); r <= Math.floor((Math.min(H, t.y + tile) - 1) / cs) && done; r++) {
          for (
            let cx = Math.max(c0, Math.floor(t.x / cs));
            cx <= Math.min(c1 - 1, Math.floor((t.x + tile - 1) / cs));
            cx++
          ) {
            if (!chunkDone(cx, r)) {
              done = false;
              break;
            }
          }
        }
        if (done) {
          skippedResumed++;
          tilesDone++;
        } else jobs.push(t);
      }

      let nextRow = 0;
      /** Argmax and write every band that no tile from `beforeY` on can reach. */
      const flushRows = (beforeY: number) => {
        while (nextRow < rows && (nextRow + 1) * cs <= beforeY) {
          const r = nextRow++;
          const band = bands.get(r);
          bands.delete(r);
          if (rowDone(r)) {
            if (band && freeBands.length < 8) freeBands.push(band);
            continue;
          }
          const h = Math.min(cs, H - r * cs);
          for (let cx = c0; cx < c1; cx++) {
            if (chunkDone(cx, r)) continue;
            const cw = Math.min(cs, W - cx * cs);
            const labels = new Uint8Array(cw * h);
            if (band) {
              const { acc, wsum } = band;
              for (let y = 0; y < h; y++) {
                for (let x = 0; x < cw; x++) {
                  const i = y * sw + (cx * cs - X0) + x;
                  if (wsum[i] === 0) continue;
                  let best = 0;
                  let bv = acc[i * C]!;
                  for (let c = 1; c < C; c++) {
                    if (acc[i * C + c]! > bv) {
                      bv = acc[i * C + c]!;
                      best = c;
                    }
                  }
                  labels[y * cw + x] = best + 1;
                }
              }
            }
            chunksWritten++;
            track(w.writeTile(cx * cs, r * cs, cw, h, labels));
            if (imageWriter.streaming) track(imageWriter.writeChunk(cx, r));
          }
          if (band && freeBands.length < 8) freeBands.push(band);
        }
      };

      const accumulate = (t: TileJob, probs: Float32Array) => {
        const xa = Math.max(t.x, X0);
        const xb = Math.min(t.x + tile, X1);
        const yb = Math.min(t.y + tile, H);
        for (let gy = t.y; gy < yb; gy++) {
          const r = Math.floor(gy / cs);
          const band = bandOf(r);
          const ly = gy - r * cs;
          const ty = gy - t.y;
          for (let gx = xa; gx < xb; gx++) {
            const tx = gx - t.x;
            const wgt = window[ty * tile + tx]!;
            const i = ly * sw + (gx - X0);
            band.wsum[i] += wgt;
            const src = (ty * tile + tx) * C;
            for (let c = 0; c < C; c++) band.acc[i * C + c] += wgt * probs[src + c]!;
          }
        }
      };

      // Bounded read-ahead: reads for the next `prefetch` tiles are in flight while the model runs.
      const reads: Promise<RGBAImage>[] = [];
      let issued = 0;
      const topUp = () => {
        while (issued < jobs.length && reads.length < prefetch) {
          const t = jobs[issued++]!;
          const p = read(t.x, t.y, tile);
          p.catch(() => {});
          reads.push(p);
        }
      };
      const runBatch = async (start: number): Promise<{ jobs: TileJob[]; logits: TileLogits[] }> => {
        const group = jobs.slice(start, start + batch);
        // Two buffers alternate: at most one batch is in ORT while the next one is filled.
        const { pixels, view } = inputBuffer(group.length);
        for (let b = 0; b < group.length; b++) {
          topUp();
          const img = await reads.shift()!;
          fillPixels(img, tile, pixels, b, runner!);
        }
        topUp();
        const logits: TileLogits[] = [];
        for (const v of views) {
          const seen = isIdentity(v) ? pixels : viewPixelsNCHW(pixels, group.length, 3, tile, v, view!);
          logits.push(await runner!.run(seen, group.length, tile, tile));
        }
        return { jobs: group, logits };
      };
      topUp();
      let probs: Float32Array | undefined;
      let viewProbs: Float32Array | undefined;
      let inflight = jobs.length > 0 ? runBatch(0) : null;
      for (let start = 0; inflight; start += batch) {
        const { jobs: group, logits } = await inflight;
        if (o.signal?.aborted) {
          await Promise.all(pendingWrites);
          throw new InferAbortedError(`${slidePath}: inference aborted`);
        }
        // The next batch reads and runs while this one is blended.
        inflight = start + batch < jobs.length ? runBatch(start + batch) : null;
        for (let b = 0; b < group.length; b++) {
          const t = group[b]!;
          if (views.length === 1) {
            probs = upsampledSoftmax(logits[0]!.data, logits[0]!, b, tile, tile, probs);
          } else {
            // Each view's probabilities back in the tile's frame, averaged.
            probs = probs ? probs.fill(0) : new Float32Array(tile * tile * C);
            for (const [k, v] of views.entries()) {
              viewProbs = upsampledSoftmax(logits[k]!.data, logits[k]!, b, tile, tile, viewProbs);
              accumulateViewHWC(viewProbs, tile, C, v, 1 / views.length, probs);
            }
          }
          accumulate(t, probs);
          o.onTile?.({
            x: t.x,
            y: t.y,
            level0X: Math.round(t.x * ds),
            level0Y: Math.round(t.y * ds),
            level0Size: tile * ds,
          });
          tilesDone++;
          computed++;
          if (t.x < X0) recomputed++;
        }
        const next = inflight ? jobs[start + batch] : undefined;
        flushRows(next ? next.y : Number.POSITIVE_INFINITY);
        report();
        // Writing is asynchronous, but bounded: never more than a stripe row of chunks queued.
        if (pendingWrites.size > 2 * stripeChunks) await Promise.race(pendingWrites);
      }
      flushRows(Number.POSITIVE_INFINITY);
      await Promise.all(pendingWrites);
    }
    report(true);
    const inferenceSeconds = (performance.now() - tInfer) / 1000;

    const tOut = performance.now();
    const written = await w.finish();
    const labelsPath = join(imagePath, 'labels', 'segmentation');
    const image = await imageWriter.finish();

    const classOf: Record<number, PolygonClass> = {};
    runner.classNames.forEach((n, c) => {
      classOf[c + 1] = { name: n, color: classColour(c + 1) };
    });
    const geojsonPath = join(o.out, `${name}.geojson`);
    const polygonStream =
      polygonMode === 'none'
        ? null
        : new PolygonStreamer({
            path: geojsonPath,
            mode: polygonMode,
            width: W,
            classes: classOf,
            // The grid pixel g was read from level-0 [g·ds, (g+1)·ds) (tileReader), so ds maps it back exactly.
            scaleX: ds,
            scaleY: ds,
            bounds: { width: W0, height: H0 },
            mpp,
            precision,
            simplify: simplifyUm / mpp,
          });
    let overview: Awaited<ReturnType<typeof labelOverview>>;
    try {
      overview = await labelOverview(labelsPath, W, H, cs, overviewSize, C, (band, rows) =>
        polygonStream ? polygonStream.addBand(band, rows) : undefined,
      );
    } catch (err) {
      await polygonStream?.abort();
      throw err;
    }
    const polygonSummary = polygonStream ? await polygonStream.finish() : null;
    if (!polygonStream) await rm(geojsonPath, { force: true });
    const areas: InferSummary['areas'] = {};
    runner.classNames.forEach((n, c) => {
      const pixels = overview.counts[c + 1]!;
      areas[n] = { label: c + 1, pixels, um2: pixels * mpp * mpp };
    });

    const thumb = await slide.thumbnail(1024);
    const small = nearest(overview.mask, overview.width, overview.height, thumb.width, thumb.height);
    const palette = Array.from({ length: C + 1 }, (_, k) => classColour(k));
    const overlayPath = join(o.out, `${name}.overlay.png`);
    await writePNG(
      overlayPath,
      overlay(thumb, { data: small, width: thumb.width, height: thumb.height }, palette, 0.45, {
        // 0 = not analysed; a class named background stays unpainted so the tissue shows through.
        skip: [0, ...runner.classNames.flatMap((n, c) => (/^(background|bg)$/i.test(n) ? [c + 1] : []))],
      }),
    );
    const outputsSeconds = (performance.now() - tOut) / 1000;

    const summaryPath = join(o.out, `${name}.summary.json`);
    const summary: InferSummary = {
      slide: slidePath,
      name,
      format: slide.format,
      slideWidth: W0,
      slideHeight: H0,
      slideMpp,
      mpp,
      grid: { width: W, height: H, chunkSize: cs },
      tile,
      overlap,
      tta: o.tta ?? 'none',
      batch,
      backend: runner.backend,
      classes: runner.classNames,
      areas,
      unlabelledPixels: overview.counts[0]!,
      tiles: {
        grid: xs.length * ys.length,
        tissue: tissueTiles.length,
        computed,
        recomputedAtStripeBorders: recomputed,
        skippedResumed,
      },
      chunks: { written: written.chunksWritten, resumed: written.chunksResumed, total: cols * rows },
      timings: {
        tissueSeconds,
        inferenceSeconds,
        outputsSeconds,
        totalSeconds: (performance.now() - t0) / 1000,
      },
      tilesPerSecond: computed / Math.max(inferenceSeconds, 1e-9),
      outputs: {
        image: imagePath,
        labels: labelsPath,
        overlay: overlayPath,
        geojson: geojsonPath,
        summary: summaryPath,
      },
      image: {
        mode: imageMode,
        zarrFormat,
        levels: image.levels.map((l) => ({ width: l.width, height: l.height, mpp: l.mpp })),
      },
      polygons: {
        mode: polygonMode,
        features: polygonSummary?.features ?? 0,
        objects: polygonSummary?.objects ?? 0,
      },
    };
    await writeJsonAtomic(summaryPath, summary);
    return summary;
  } finally {
    // An interrupted writer is dropped unfinished: the chunks it wrote are what resume keeps.
    if (ownRunner) await runner?.release().catch(() => {});
    await slide.close().catch(() => {});
  }
}

/** Nearest-neighbour resize of a label map. */
function nearest(src: Uint8Array, sw: number, sh: number, dw: number, dh: number): Uint8Array {
  const out = new Uint8Array(dw * dh);
  for (let y = 0; y < dh; y++) {
    const sy = Math.min(sh - 1, Math.floor(((y + 0.5) * sh) / dh));
    for (let x = 0; x < dw; x++)
      out[y * dw + x] = src[sy * sw + Math.min(sw - 1, Math.floor(((x + 0.5) * sw) / dw))]!;
  }
  return out;
}

/**
 * Reads level 0 of the written label image back one band (a row of chunks, full width) at a time: exact per-label
 * pixel counts and a nearest-neighbour overview whose longest side is at most `maxSize` (for the overlay PNG);
 * each band is also handed to `onBand` (the polygon tracer) before the next one is read.
 */
export async function labelOverview(
  labelsPath: string,
  W: number,
  H: number,
  cs: number,
  maxSize: number,
  numLabels: number,
  onBand?: (band: Uint8Array, rows: number) => Promise<void> | undefined,
): Promise<{ mask: Uint8Array; width: number; height: number; counts: number[] }> {
  const f = Math.max(1, Math.max(W, H) / maxSize);
  const ow = Math.max(1, Math.round(W / f));
  const oh = Math.max(1, Math.round(H / f));
  const mask = new Uint8Array(ow * oh);
  const counts = new Array(numLabels + 1).fill(0) as number[];
  const arr = await zarr
    .open(new FolderStore(labelsPath), { kind: 'group' })
    .then((g) => zarr.open(g.resolve('0'), { kind: 'array' }));
  const sxOf = (x: number) => Math.min(W - 1, Math.floor((x + 0.5) * (W / ow)));
  const syOf = (y: number) => Math.min(H - 1, Math.floor((y + 0.5) * (H / oh)));
  for (let y0 = 0; y0 < H; y0 += cs) {
    const h = Math.min(cs, H - y0);
    const band = (await zarr.get(arr, [zarr.slice(y0, y0 + h), null])) as { data: Uint8Array };
    const d = band.data;
    for (let i = 0; i < d.length; i++) counts[d[i]!] = (counts[d[i]!] ?? 0) + 1;
    for (let oy = Math.max(0, Math.floor((y0 * oh) / H) - 1); oy < oh; oy++) {
      const sy = syOf(oy);
      if (sy < y0) continue;
      if (sy >= y0 + h) break;
      for (let ox = 0; ox < ow; ox++) mask[oy * ow + ox] = d[(sy - y0) * W + sxOf(ox)]!;
    }
    await onBand?.(d, h);
  }
  return { mask, width: ow, height: oh, counts };
}

/**
 * What `inferSlide` takes and gives: its options, the progress it reports and the summary it writes, and the options
 * checked and defaulted once (`resolveInferSettings`) so every part of the pipeline reads plain values.
 */
import { basename, extname } from 'node:path';
import { type TestTimeAugmentation, ttaViews, type View } from '../core/tta.ts';
import type { PolygonMode } from './polygons.ts';
import type { StageClock } from './stage-clock.ts';
import type { InferBackend, TileRunner } from './tile-runner.ts';

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
  /** Times the tile loop's stages into this clock (bench/infer-slide.ts). */
  clock?: StageClock;
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

/** Thrown when `signal` stops a run between batches (the chunks already written stay for a resume). */
export class InferAbortedError extends Error {
  override name = 'InferAbortedError';
}

/** The options of one run, checked, with their defaults applied. */
export interface InferSettings {
  mpp: number;
  tile: number;
  overlap: number;
  batch: number;
  /** Test-time augmentation views (the identity alone without TTA). */
  views: View[];
  chunkSize: number;
  /** Label chunks per stripe. */
  stripeChunks: number;
  prefetch: number;
  name: string;
  zarrFormat: 2 | 3;
  imageMode: 'full' | 'overview';
  polygonMode: PolygonMode;
  polygonPrecision: number;
  polygonSimplifyUm: number;
  overviewSize: number;
  log: (line: string) => void;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer, got ${v}`);
  return v;
}

/** Checks the options (throwing on the first bad one) and applies the defaults documented on `InferSlideOptions`. */
export function resolveInferSettings(slidePath: string, o: InferSlideOptions): InferSettings {
  const mpp = o.mpp ?? 0.5;
  if (!(mpp > 0)) throw new Error(`mpp must be positive, got ${mpp}`);
  const tile = positiveInt('tile', o.tile ?? 512);
  const overlap = o.overlap ?? 64;
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= tile)
    throw new Error(`overlap must be an integer in [0, tile), got ${overlap}`);
  const batch = positiveInt('batch', o.batch ?? 1);
  const views = ttaViews(o.tta);
  const chunkSize = positiveInt('chunkSize', o.chunkSize ?? 512);
  const stripeChunks = Math.max(1, Math.floor((o.stripeWidth ?? 8192) / chunkSize));
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
  const polygonPrecision = o.polygonPrecision ?? 2;
  if (!Number.isInteger(polygonPrecision) || polygonPrecision < 0 || polygonPrecision > 10)
    throw new Error(`polygon precision must be an integer in [0, 10], got ${polygonPrecision}`);
  const polygonSimplifyUm = o.polygonSimplify ?? 0;
  if (!(polygonSimplifyUm >= 0))
    throw new Error(`polygon simplification must be >= 0 µm, got ${polygonSimplifyUm}`);
  const overviewSize = positiveInt('overviewSize', o.overviewSize ?? 2048);
  const log = o.log === null ? () => {} : (o.log ?? ((line: string) => process.stderr.write(`${line}\n`)));
  return {
    mpp,
    tile,
    overlap,
    batch,
    views,
    chunkSize,
    stripeChunks,
    prefetch,
    name,
    zarrFormat,
    imageMode,
    polygonMode,
    polygonPrecision,
    polygonSimplifyUm,
    overviewSize,
    log,
  };
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

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
 *
 * The parts: tile-plan (grid, tissue, stripes, resume), tile-source (reads, prefetch), tile-batches (model, TTA),
 * band-accumulator (blending, argmax), tile-inference (the stripe loop), and the outputs behind `SlideOutput`:
 * zarr-output, label-overview (class areas), overlay-output, polygon-output; slide-summary gathers the summary.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeJsonAtomic } from '../core/atomic-write.ts';
import { blendWindow } from '../core/sliding.ts';
import { openSlide } from '../slide/index.ts';
import type { Slide } from '../slide/types.ts';
import { relaxHeapGrowth } from './heap-growth.ts';
import { TileProgress } from './infer-progress.ts';
import { LabelCounts } from './label-overview.ts';
import { OverlayOutput } from './overlay-output.ts';
import { PolygonOutput, type PolygonOutputResult } from './polygon-output.ts';
import {
  type InferSettings,
  type InferSlideOptions,
  type InferSummary,
  resolveInferSettings,
} from './slide-infer-options.ts';
import { readLabelBands } from './slide-output.ts';
import { slideSummary } from './slide-summary.ts';
import { TileBatchRunner } from './tile-batches.ts';
import { inferTiles } from './tile-inference.ts';
import { type OutputGrid, outputGrid, planTiles, tissueFilter } from './tile-plan.ts';
import { loadTileRunner, type TileRunner } from './tile-runner.ts';
import { gridTileReader, readCacheBudget, tilesAreSlidePixels } from './tile-source.ts';
import { ZarrOutput } from './zarr-output.ts';

export { labelOverview } from './label-overview.ts';
export {
  InferAbortedError,
  type InferProgress,
  type InferSlideOptions,
  type InferSummary,
  slideBaseName,
} from './slide-infer-options.ts';

/** Segments a whole slide; see the module comment. Returns (and writes) the summary. */
export async function inferSlide(slidePath: string, o: InferSlideOptions): Promise<InferSummary> {
  const t0 = performance.now();
  const s = resolveInferSettings(slidePath, o);
  await mkdir(o.out, { recursive: true });
  // libvips' operation cache (process-wide, up to 50 MB) would keep every decoded JPEG block and resized tile:
  // here each is used once and the slide reader keeps its own bounded block cache, so it only grows memory.
  sharp.cache(false);
  const stripe = s.stripeChunks * s.chunkSize;
  const cacheBytes =
    o.cacheBytes ??
    (await readCacheBudget(slidePath, { mpp: s.mpp, slideMpp: o.slideMpp, tile: s.tile, stripe }));
  const slide = await openSlide(slidePath, { workers: o.decodeWorkers ?? 'auto', cacheBytes });
  let runner: TileRunner | undefined = o.runner;
  try {
    const grid = outputGrid(slidePath, slide, s.mpp, o.slideMpp);
    runner ??= await loadTileRunner(o.model, {
      backend: o.backend,
      cacheDir: join(o.out, '.cache'),
      threads: o.threads,
    });
    const classes = runner.numLabels;
    if (classes > 254) throw new Error(`${o.model}: ${classes} classes do not fit 8-bit labels`);
    const { classNames } = runner;

    const tTissue = performance.now();
    const tiles = { width: grid.width, height: grid.height, ...s };
    const keep =
      (o.tissue ?? 'auto') === 'auto'
        ? await tissueFilter(slide, grid.width, grid.height, s.tile)
        : () => true;
    const plan = planTiles(tiles, keep);
    const tissueSeconds = (performance.now() - tTissue) / 1000;

    const imagePath = join(o.out, `${s.name}.ome.zarr`);
    const zarr = await ZarrOutput.open(slide, {
      ...s,
      path: imagePath,
      width: grid.width,
      height: grid.height,
      downsample: grid.downsample,
      classes,
      classNames,
      resume: o.resume ?? false,
      signal: o.signal,
    });
    const progress = new TileProgress(s.name, plan.tilesTotal, o.onProgress, s.log);
    // Only the tile loop: the outputs derived afterwards (polygons) build heaps that should be collected as usual.
    const restoreHeapGrowth = relaxHeapGrowth();
    try {
      await inferTiles({
        ...s,
        slidePath,
        grid: tiles,
        plan,
        blend: { ...tiles, classes, window: blendWindow(s.tile, s.overlap) },
        read: gridTileReader(slide, grid.downsample, s.mpp, o.slideMpp === undefined, o.clock),
        paintImage:
          zarr.streamsImage && tilesAreSlidePixels(slide, grid.downsample, o.slideMpp === undefined),
        batches: new TileBatchRunner(runner, s.tile, s.views, o.clock),
        writer: zarr,
        progress,
        downsample: grid.downsample,
        signal: o.signal,
        onTile: o.onTile,
        clock: o.clock,
      });
    } finally {
      restoreHeapGrowth();
    }
    const inferenceSeconds = progress.seconds;

    const tOut = performance.now();
    const written = await zarr.finish();
    const paths = {
      overlay: join(o.out, `${s.name}.overlay.png`),
      geojson: join(o.out, `${s.name}.geojson`),
      summary: join(o.out, `${s.name}.summary.json`),
    };
    const derived = await deriveOutputs(slide, written.labels, {
      grid,
      settings: s,
      classes,
      classNames,
      paths,
    });
    const outputsSeconds = (performance.now() - tOut) / 1000;

    const summary = slideSummary({
      slidePath,
      format: slide.format,
      settings: s,
      tta: o.tta ?? 'none',
      grid,
      backend: runner.backend,
      classNames,
      plan,
      progress,
      ...derived,
      zarr: written,
      paths,
      timings: {
        tissueSeconds,
        inferenceSeconds,
        outputsSeconds,
        totalSeconds: (performance.now() - t0) / 1000,
      },
    });
    await writeJsonAtomic(paths.summary, summary);
    return summary;
  } finally {
    // An interrupted writer is dropped unfinished: the chunks it wrote are what resume keeps.
    if (!o.runner) await runner?.release().catch(() => {});
    await slide.close().catch(() => {});
  }
}

interface DerivedOutputsJob {
  grid: OutputGrid;
  settings: InferSettings;
  classes: number;
  classNames: string[];
  paths: { overlay: string; geojson: string };
}

/**
 * Reads the finished label image back band by band into the outputs derived from it: class areas, the overlay PNG
 * and the GeoJSON polygons (a partial GeoJSON is dropped when reading fails).
 */
async function deriveOutputs(
  slide: Slide,
  labelsPath: string,
  { grid, settings: s, classes, classNames, paths }: DerivedOutputsJob,
): Promise<{ counts: number[]; polygons: PolygonOutputResult }> {
  const areas = new LabelCounts(classes);
  const overlay = new OverlayOutput(slide, { ...s, path: paths.overlay, ...grid, classes, classNames });
  const polygons = new PolygonOutput({
    path: paths.geojson,
    mode: s.polygonMode,
    width: grid.width,
    classNames,
    downsample: grid.downsample,
    bounds: { width: grid.slideWidth, height: grid.slideHeight },
    mpp: s.mpp,
    precision: s.polygonPrecision,
    simplifyUm: s.polygonSimplifyUm,
  });
  try {
    await readLabelBands(labelsPath, grid.width, grid.height, s.chunkSize, [areas, overlay, polygons]);
  } catch (err) {
    await polygons.abort();
    throw err;
  }
  const polygonSummary = await polygons.finish();
  const counts = await areas.finish();
  await overlay.finish();
  return { counts, polygons: polygonSummary };
}

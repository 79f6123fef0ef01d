/** The summary of a whole-slide run (`<name>.summary.json`), gathered from the parts of the pipeline. */

import type { TestTimeAugmentation } from '../core/tta.ts';
import type { TileProgress } from './infer-progress.ts';
import type { PolygonOutputResult } from './polygon-output.ts';
import type { InferSettings, InferSummary } from './slide-infer-options.ts';
import type { OutputGrid, TilePlan } from './tile-plan.ts';
import type { InferBackend } from './tile-runner.ts';
import type { ZarrOutputResult } from './zarr-output.ts';

export interface SummaryParts {
  slidePath: string;
  format: string;
  settings: InferSettings;
  tta: TestTimeAugmentation;
  grid: OutputGrid;
  backend: InferBackend;
  classNames: string[];
  plan: TilePlan;
  progress: TileProgress;
  /** Pixels per label value (0 … classes). */
  counts: number[];
  zarr: ZarrOutputResult;
  polygons: PolygonOutputResult;
  paths: { overlay: string; geojson: string; summary: string };
  timings: InferSummary['timings'];
}

export function slideSummary(p: SummaryParts): InferSummary {
  const s = p.settings;
  const areas: InferSummary['areas'] = {};
  p.classNames.forEach((n, c) => {
    const pixels = p.counts[c + 1]!;
    areas[n] = { label: c + 1, pixels, um2: pixels * s.mpp * s.mpp };
  });
  return {
    slide: p.slidePath,
    name: s.name,
    format: p.format,
    slideWidth: p.grid.slideWidth,
    slideHeight: p.grid.slideHeight,
    slideMpp: p.grid.slideMpp,
    mpp: s.mpp,
    grid: { width: p.grid.width, height: p.grid.height, chunkSize: s.chunkSize },
    tile: s.tile,
    overlap: s.overlap,
    tta: p.tta,
    batch: s.batch,
    backend: p.backend,
    classes: p.classNames,
    areas,
    unlabelledPixels: p.counts[0]!,
    tiles: {
      grid: p.plan.gridTiles,
      tissue: p.plan.tissueTiles,
      computed: p.progress.computed,
      recomputedAtStripeBorders: p.progress.recomputed,
      skippedResumed: p.progress.skippedResumed,
    },
    chunks: {
      written: p.zarr.chunksWritten,
      resumed: p.zarr.chunksResumed,
      total: p.plan.cols * p.plan.rows,
    },
    timings: p.timings,
    tilesPerSecond: p.progress.computed / Math.max(p.timings.inferenceSeconds, 1e-9),
    outputs: {
      image: p.zarr.image,
      labels: p.zarr.labels,
      overlay: p.paths.overlay,
      geojson: p.paths.geojson,
      summary: p.paths.summary,
    },
    image: { mode: s.imageMode, zarrFormat: s.zarrFormat, levels: p.zarr.levels },
    polygons: { mode: s.polygonMode, features: p.polygons.features, objects: p.polygons.objects },
  };
}

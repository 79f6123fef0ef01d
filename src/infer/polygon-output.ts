/**
 * The GeoJSON polygons of a whole-slide run, traced from the label image as it is read back band by band, in
 * level-0 slide coordinates; with mode 'none' no file is written (and a stale one is removed).
 */
import { rm } from 'node:fs/promises';
import { classColour } from '../core/palette.ts';
import { type PolygonClass, type PolygonMode, PolygonStreamer } from './polygons.ts';
import type { SlideOutput } from './slide-output.ts';

export interface PolygonOutputOptions {
  /** The .geojson written. */
  path: string;
  mode: PolygonMode;
  /** Label grid width. */
  width: number;
  /** Class names by class index (label value − 1). */
  classNames: readonly string[];
  /** Level-0 pixels per grid pixel. */
  downsample: number;
  /** Level-0 size of the slide (coordinates are clamped to it). */
  bounds: { width: number; height: number };
  /** µm per grid pixel. */
  mpp: number;
  /** Decimals of the coordinates. */
  precision: number;
  /** Douglas–Peucker tolerance in µm (0: exact pixel outlines). */
  simplifyUm: number;
}

export interface PolygonOutputResult {
  features: number;
  objects: number;
}

export class PolygonOutput implements SlideOutput<PolygonOutputResult> {
  readonly #path: string;
  readonly #streamer: PolygonStreamer | null;

  constructor(o: PolygonOutputOptions) {
    this.#path = o.path;
    const classes: Record<number, PolygonClass> = {};
    o.classNames.forEach((name, c) => {
      classes[c + 1] = { name, color: classColour(c + 1) };
    });
    this.#streamer =
      o.mode === 'none'
        ? null
        : new PolygonStreamer({
            path: o.path,
            mode: o.mode,
            width: o.width,
            classes,
            // The grid pixel g was read from level-0 [g·ds, (g+1)·ds) (gridTileReader), so ds maps it back exactly.
            scaleX: o.downsample,
            scaleY: o.downsample,
            bounds: o.bounds,
            mpp: o.mpp,
            precision: o.precision,
            simplify: o.simplifyUm / o.mpp,
          });
  }

  band(labels: Uint8Array, _y0: number, rows: number): Promise<void> | undefined {
    return this.#streamer?.addBand(labels, rows);
  }

  async finish(): Promise<PolygonOutputResult> {
    if (!this.#streamer) {
      await rm(this.#path, { force: true });
      return { features: 0, objects: 0 };
    }
    const s = await this.#streamer.finish();
    return { features: s.features, objects: s.objects };
  }

  async abort(): Promise<void> {
    await this.#streamer?.abort();
  }
}

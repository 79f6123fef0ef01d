/**
 * The OME-Zarr output of a whole-slide run: the label image (`<name>.ome.zarr/labels/segmentation`) and the image
 * it belongs to (NGFF hangs labels off an image): the slide on the label grid, its level-0 chunks written beside
 * their labels as inference finishes them (or, for an overview-only image, its levels at the end).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { classColour } from '../core/palette.ts';
import type { Slide } from '../slide/types.ts';
import { OmeZarrImageWriter, overviewLevel } from './omezarr-image-writer.ts';
import { createLabelWriter, type OmeZarrLabelWriter } from './omezarr-writer.ts';
import type { SlideOutput } from './slide-output.ts';

export interface ZarrOutputOptions {
  /** The `.ome.zarr` folder. */
  path: string;
  /** Image name in the multiscales metadata. */
  name: string;
  /** Label grid size. */
  width: number;
  height: number;
  /** Level-0 slide pixels per grid pixel. */
  downsample: number;
  /** µm per grid pixel. */
  mpp: number;
  chunkSize: number;
  /** Number of classes (label values 1 … classes). */
  classes: number;
  /** Class names by class index (label value − 1). */
  classNames: readonly string[];
  zarrFormat: 2 | 3;
  /** 'full': the image at the grid's resolution with its pyramid; 'overview': only levels of at most overviewSize. */
  imageMode: 'full' | 'overview';
  overviewSize: number;
  /** Keep the chunks of an earlier, interrupted run; otherwise start from an empty store. */
  resume: boolean;
  signal?: AbortSignal;
}

export interface ZarrOutputResult {
  image: string;
  labels: string;
  chunksWritten: number;
  chunksResumed: number;
  levels: { width: number; height: number; mpp: number }[];
}

export class ZarrOutput implements SlideOutput<ZarrOutputResult> {
  readonly #o: ZarrOutputOptions;
  readonly #labels: OmeZarrLabelWriter;
  readonly #image: OmeZarrImageWriter;

  private constructor(o: ZarrOutputOptions, labels: OmeZarrLabelWriter, image: OmeZarrImageWriter) {
    this.#o = o;
    this.#labels = labels;
    this.#image = image;
  }

  static async open(slide: Slide, o: ZarrOutputOptions): Promise<ZarrOutput> {
    // A fresh run starts from an empty store (the other zarr format's metadata would shadow this run's).
    if (!o.resume) await rm(o.path, { recursive: true, force: true });
    const colors: Record<number, [number, number, number, number]> = { 0: [0, 0, 0, 0] };
    for (let c = 0; c < o.classes; c++)
      colors[c + 1] = [...classColour(c + 1), 255] as [number, number, number, number];
    const labels = await createLabelWriter({
      imagePath: o.path,
      name: 'segmentation',
      width: o.width,
      height: o.height,
      chunkSize: o.chunkSize,
      classNames: ['unlabelled', ...o.classNames],
      colors,
      scale: { x: o.mpp, y: o.mpp, unit: 'micrometer' },
      zarrFormat: o.zarrFormat,
      resume: o.resume,
    });
    const image = await OmeZarrImageWriter.create(slide, {
      path: o.path,
      name: o.name,
      width: o.width,
      height: o.height,
      downsample: o.downsample,
      mpp: o.mpp,
      chunkSize: o.chunkSize,
      firstLevel:
        o.imageMode === 'overview' ? overviewLevel(o.width, o.height, o.chunkSize, o.overviewSize) : 0,
      zarrFormat: o.zarrFormat,
      resume: o.resume,
      signal: o.signal,
    });
    return new ZarrOutput(o, labels, image);
  }

  /** True when label chunk (cx, cy) is on disk already (from an interrupted run being resumed). */
  chunkDone(cx: number, cy: number): boolean {
    const { width, height, chunkSize: cs } = this.#o;
    return this.#labels.isTileDone(
      cx * cs,
      cy * cs,
      Math.min(cs, width - cx * cs),
      Math.min(cs, height - cy * cs),
    );
  }

  /** True when level-0 image chunks are written beside their labels (a full-resolution image). */
  get streamsImage(): boolean {
    return this.#image.streaming;
  }

  /** `image`: the chunk's image pixels (planar RGB, chunk-size square) when the caller has them already. */
  chunk(
    cx: number,
    cy: number,
    labels: Uint8Array,
    cw: number,
    ch: number,
    image?: Uint8Array,
  ): Promise<void>[] {
    const cs = this.#o.chunkSize;
    const writes = [this.#labels.writeTile(cx * cs, cy * cs, cw, ch, labels)];
    if (this.#image.streaming) writes.push(this.#image.writeChunk(cx, cy, image));
    return writes;
  }

  async finish(): Promise<ZarrOutputResult> {
    const written = await this.#labels.finish();
    const image = await this.#image.finish();
    return {
      image: this.#o.path,
      labels: join(this.#o.path, 'labels', 'segmentation'),
      chunksWritten: written.chunksWritten,
      chunksResumed: written.chunksResumed,
      levels: image.levels.map((l) => ({ width: l.width, height: l.height, mpp: l.mpp })),
    };
  }
}

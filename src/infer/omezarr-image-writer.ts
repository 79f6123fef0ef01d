/**
 * Writes the slide itself as the OME-NGFF image at the root of an inference output (`<name>.ome.zarr`), so that
 * NGFF readers (ome-zarr-py, napari, QuPath's OME-Zarr support, slideseg's own reader) find an image with physical
 * units and, under it, the `labels/` the spec hangs off an image.
 *
 * The image grid is the label grid (the output mpp): level 0 has the labels' shape and pixel size, so image and
 * labels overlay pixel for pixel. Every level is read from the slide's own pyramid at that level's resolution
 * (`mpp × 2^k`) one chunk at a time, so memory is one chunk, whatever the slide's size. Level-0 chunks are written
 * while inferring, each right after its labels (its slide blocks are then usually still in the reader's cache). `firstLevel` skips
 * the large levels: an overview-only image (the labels keep full resolution) costs a few MB instead of several
 * times the slide's own size (lossless RGB in zlib: about 6× the sample slide's JPEG tiles).
 *
 * Axes c, y, x (uint8 RGB, µm scales, `omero` rendering hints for RGB). Zarr v2 + NGFF 0.4, or v3 + NGFF 0.5.
 */
import { access, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import type { Slide } from '../slide/types.ts';
import {
  arrayMeta,
  arrayMetaFile,
  type ChunkCodec,
  type ChunkCompression,
  chunkPath,
  makeChunkCodec,
  writeAtomic,
  writeGroup,
  writeJsonAtomic,
  type ZarrFormat,
} from './zarr-layout.ts';

export interface ImagePyramidOptions {
  /** The `.ome.zarr` folder (created). */
  path: string;
  /** Image name in the multiscales metadata. */
  name: string;
  /** Level-0 grid size (the label grid). */
  width: number;
  height: number;
  /** Slide level-0 pixels per grid pixel. */
  downsample: number;
  /** µm per grid pixel at level 0 (the output mpp). */
  mpp: number;
  chunkSize?: number;
  /** First level written (0: full resolution; larger: an overview-only pyramid). Default 0. */
  firstLevel?: number;
  zarrFormat?: ZarrFormat;
  compression?: ChunkCompression;
  /** Keep chunks already on disk (resumed run). */
  resume?: boolean;
  signal?: AbortSignal;
}

export interface ImagePyramidSummary {
  levels: { path: string; width: number; height: number; mpp: number }[];
  chunksWritten: number;
}

/** Grid levels: halve until the level fits in one chunk. */
export function pyramidSizes(width: number, height: number, chunkSize: number): [number, number][] {
  const sizes: [number, number][] = [[width, height]];
  for (;;) {
    const [w, h] = sizes[sizes.length - 1]!;
    if (Math.max(w, h) <= chunkSize) break;
    sizes.push([Math.ceil(w / 2), Math.ceil(h / 2)]);
  }
  return sizes;
}

/** First level whose longest side is at most `maxSide` (for overview-only images). */
export function overviewLevel(width: number, height: number, chunkSize: number, maxSide: number): number {
  const sizes = pyramidSizes(width, height, chunkSize);
  const i = sizes.findIndex(([w, h]) => Math.max(w, h) <= maxSide);
  return i < 0 ? sizes.length - 1 : i;
}

/**
 * Writes the image pyramid of an inference output: level-0 chunks as the inference hands them in (`writeChunk`,
 * right after their labels, while the slide blocks they come from are likely still in the reader's cache), the
 * rest at `finish()` (level-0 chunks never handed in, e.g. kept by a resumed run's labels, then the lower levels
 * and the metadata).
 */
export class OmeZarrImageWriter {
  readonly #slide: Slide;
  readonly #o: ImagePyramidOptions;
  readonly #cs: number;
  readonly #format: ZarrFormat;
  readonly #codec: ChunkCodec;
  readonly #sizes: [number, number][];
  readonly #first: number;
  /** Level-0 chunks written in this run. */
  readonly #done: Uint8Array;
  readonly #cols: number;
  #written = 0;

  private constructor(slide: Slide, o: ImagePyramidOptions, codec: ChunkCodec) {
    this.#slide = slide;
    this.#o = o;
    this.#cs = o.chunkSize ?? 512;
    this.#format = o.zarrFormat ?? 2;
    this.#codec = codec;
    this.#sizes = pyramidSizes(o.width, o.height, this.#cs);
    this.#first = Math.min(o.firstLevel ?? 0, this.#sizes.length - 1);
    this.#cols = Math.ceil(o.width / this.#cs);
    this.#done = new Uint8Array(this.#cols * Math.ceil(o.height / this.#cs));
  }

  static async create(slide: Slide, o: ImagePyramidOptions): Promise<OmeZarrImageWriter> {
    const codec = await makeChunkCodec(o.compression ?? 'zlib', o.zarrFormat ?? 2);
    const w = new OmeZarrImageWriter(slide, o, codec);
    for (let k = w.#first; k < w.#sizes.length; k++) {
      const [lw, lh] = w.#sizes[k]!;
      const arrayPath = join(o.path, String(k - w.#first));
      // A fresh run must not mix with chunks of an earlier one.
      if (!o.resume) await rm(arrayPath, { recursive: true, force: true });
      await writeJsonAtomic(
        join(arrayPath, arrayMetaFile(w.#format)),
        arrayMeta(w.#format, [3, lh, lw], [3, w.#cs, w.#cs], ['c', 'y', 'x'], codec),
      );
    }
    return w;
  }

  /** True when level-0 chunks are written as the inference goes (full-resolution image). */
  get streaming(): boolean {
    return this.#first === 0;
  }

  /**
   * Writes level-0 chunk (cx, cy) from the slide (no-op for an overview-only image). `pixels`: the chunk already
   * read (planar RGB over white, chunk-size square, zero-padded: what this writer would make of the slide's pixels).
   */
  async writeChunk(cx: number, cy: number, pixels?: Uint8Array): Promise<void> {
    if (!this.streaming) return;
    if (pixels && pixels.length !== 3 * this.#cs * this.#cs)
      throw new Error(`${this.#o.path}: image chunk of ${pixels.length} bytes for ${this.#cs}-px chunks`);
    await this.#writeChunk(0, cx, cy, pixels);
    this.#done[cy * this.#cols + cx] = 1;
  }

  async #writeChunk(k: number, cx: number, cy: number, pixels?: Uint8Array): Promise<void> {
    const file = chunkPath(this.#format, join(this.#o.path, String(k - this.#first)), [0, cy, cx]);
    const chunk = pixels ?? (await this.#readChunk(k, cx, cy));
    await mkdir(dirname(file), { recursive: true });
    await writeAtomic(file, await this.#codec.encode(chunk));
    this.#written++;
  }

  /** Level-k chunk (cx, cy) from the slide: planar RGB, padded to the full chunk; outside the slide is white. */
  async #readChunk(k: number, cx: number, cy: number): Promise<Uint8Array> {
    const cs = this.#cs;
    const [w, h] = this.#sizes[k]!;
    const cw = Math.min(cs, w - cx * cs);
    const ch = Math.min(cs, h - cy * cs);
    const rgba = await readScaled(this.#slide, this.#o.downsample * 2 ** k, cx * cs, cy * cs, cw, ch);
    // Zarr chunks are always full size.
    const chunk = new Uint8Array(3 * cs * cs);
    const plane = cs * cs;
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        const p = (y * cw + x) * 4;
        const a = rgba[p + 3]!;
        const q = y * cs + x;
        if (a === 255) {
          // Opaque (nearly every pixel): the blend below gives the colour itself.
          chunk[q] = rgba[p]!;
          chunk[plane + q] = rgba[p + 1]!;
          chunk[2 * plane + q] = rgba[p + 2]!;
          continue;
        }
        for (let c = 0; c < 3; c++) {
          chunk[c * plane + q] = Math.round((rgba[p + c]! * a + 255 * (255 - a)) / 255);
        }
      }
    }
    return chunk;
  }

  /** Writes what is still missing, then the root group's NGFF image metadata. */
  async finish(): Promise<ImagePyramidSummary> {
    const o = this.#o;
    const cs = this.#cs;
    const levels: ImagePyramidSummary['levels'] = [];
    for (let k = this.#first; k < this.#sizes.length; k++) {
      const [w, h] = this.#sizes[k]!;
      const path = String(k - this.#first);
      for (let cy = 0; cy * cs < h; cy++) {
        for (let cx = 0; cx * cs < w; cx++) {
          if (o.signal?.aborted) throw new Error(`${o.path}: image writing aborted`);
          if (k === 0 && this.#done[cy * this.#cols + cx]) continue;
          const file = chunkPath(this.#format, join(o.path, path), [0, cy, cx]);
          if (o.resume && (await exists(file))) continue;
          await this.#writeChunk(k, cx, cy);
        }
      }
      levels.push({ path, width: w, height: h, mpp: o.mpp * 2 ** k });
    }
    const version = this.#format === 2 ? { version: '0.4' } : {};
    await writeGroup(this.#format, o.path, {
      multiscales: [
        {
          ...version,
          name: o.name,
          axes: [
            { name: 'c', type: 'channel' },
            { name: 'y', type: 'space', unit: 'micrometer' },
            { name: 'x', type: 'space', unit: 'micrometer' },
          ],
          datasets: levels.map((l) => ({
            path: l.path,
            coordinateTransformations: [{ type: 'scale', scale: [1, l.mpp, l.mpp] }],
          })),
          type: 'area',
          metadata: {
            method: 'read from the slide pyramid at each level resolution (area average)',
            slideDownsample: o.downsample,
          },
        },
      ],
      omero: {
        ...version,
        name: o.name,
        channels: (['FF0000', '00FF00', '0000FF'] as const).map((color, i) => ({
          label: ['R', 'G', 'B'][i],
          color,
          active: true,
          window: { start: 0, end: 255, min: 0, max: 255 },
        })),
        rdefs: { model: 'color' },
      },
    });
    return { levels, chunksWritten: this.#written };
  }
}

/** Writes the whole image pyramid and its metadata in one go. */
export async function writeImagePyramid(slide: Slide, o: ImagePyramidOptions): Promise<ImagePyramidSummary> {
  return (await OmeZarrImageWriter.create(slide, o)).finish();
}

/**
 * RGBA of a grid region at `ds` slide level-0 pixels per grid pixel: the best slide level for the downsample,
 * area-resized to the grid (so it needs no mpp, unlike readRegionAtMpp).
 */
async function readScaled(
  slide: Slide,
  ds: number,
  gx: number,
  gy: number,
  w: number,
  h: number,
): Promise<Uint8Array> {
  const x = Math.round(gx * ds);
  const y = Math.round(gy * ds);
  const level = slide.getBestLevelForDownsample(ds);
  const lds = slide.levels[level]!.downsample;
  const rw = Math.max(1, Math.round((w * ds) / lds));
  const rh = Math.max(1, Math.round((h * ds) / lds));
  const region = await slide.readRegion({ x, y, level, width: rw, height: rh });
  if (rw === w && rh === h) return region.data;
  const data = await sharp(region.data, { raw: { width: rw, height: rh, channels: 4 } })
    .resize({ width: w, height: h, fit: 'fill', kernel: rw > w ? 'lanczos3' : 'linear' })
    .raw()
    .toBuffer();
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

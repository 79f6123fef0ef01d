/**
 * `openOmeZarr`: an OME-Zarr image as a `PyramidSource` (one level per multiscales dataset, tiles = chunks).
 *
 * Geometry: the x/y downsample of a level is the ratio of its `scale` to level 0's (the true geometry, also
 * right when a level's size was rounded, e.g. 10 px → 2 px at scale 4); without scales it is OpenSlide's
 * level-0 size / level size. `SlideLevel.downsample` is the mean of the x and y values, as OpenSlide does.
 * Translations (half-pixel offsets of downsampled levels) are ignored, as OpenSlide ignores them.
 * mpp comes from level 0's x/y scale when those axes carry a length unit (converted to micrometres).
 * Non-spatial axes other than the channel axis (t, z, ...) are fixed at index 0 unless `indices` says otherwise.
 */
import type * as zarr from 'zarrita';
import { processDecodeBudget } from '../budget.ts';
import type { HttpLimits } from '../http.ts';
import type { PyramidSource, RGBAImage, SlideLevel } from '../types.ts';
import { type NumericArray, openLevelArrays } from './arrays.ts';
import { ChunkCache } from './chunk-cache.ts';
import {
  type ChannelDisplay,
  chooseChannels,
  composeRgba,
  fixedWindow,
  makeLut,
  makeMapper,
  type ValueMapper,
  type ZarrNumericType,
} from './display.ts';
import { micrometresPerUnit, type NgffImage, readNgffImage } from './metadata.ts';
import { openStore } from './store.ts';
import { DTYPE_BYTES } from './validate.ts';

export interface OmeZarrOptions {
  /**
   * Index to read along each non-spatial axis, by axis name (e.g. { t: 3, z: 10 }); default 0. Naming the
   * channel axis (e.g. { c: 2 }) shows that one channel as grey instead of the channel composite.
   */
  indices?: Readonly<Record<string, number>>;
  /** Which entry of `multiscales` to open (default 0). */
  multiscale?: number;
  /** Byte budget of the decoded-chunk cache (default 64 MiB). */
  cacheBytes?: number;
  /** How many chunks one read fetches at once (default 8). */
  concurrency?: number;
  /** Follow symlinks out of a local store's folder (trusted local data only; default false: refused). */
  allowSymlinksOutside?: boolean;
  /** Timeouts and redirect limit for a store at an http(s) URL. */
  http?: HttpLimits;
}

type Chunk = zarr.Chunk<ZarrNumericType>;

interface AxisLayout {
  x: number;
  y: number;
  /** Index of the channel axis, or -1 when there is none. */
  c: number;
  /** Fixed index along every other axis, by axis position. */
  fixed: Map<number, number>;
}

interface ShownChannel extends ChannelDisplay {
  map: ValueMapper;
  lut: { lut: Uint8Array; offset: number } | null;
}

const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
/** Decoded chunks one read may hold in flight at once (bytes): caps the fetch concurrency for big chunks. */
const IN_FLIGHT_BYTES = 512 * 1024 * 1024;
/** Display min/max come from at most this many pixels square of the smallest level, never a whole level. */
const STATS_EDGE = 1024;
/** A read touching more chunks than this must not use chunks smaller than MIN_CHUNK_AREA pixels. */
const MANY_CHUNKS = 4096;
const MIN_CHUNK_AREA = 32 * 32;

export async function openOmeZarr(source: string, opts: OmeZarrOptions = {}): Promise<PyramidSource> {
  const store = await openStore(source, { allowSymlinksOutside: opts.allowSymlinksOutside, http: opts.http });
  const image = await readNgffImage(store, source, opts.multiscale ?? 0);
  const arrays = await openLevelArrays(store, source, image);
  const layout = axisLayout(image, arrays[0].shape, opts.indices ?? {}, source);
  const dtype = arrays[0].dtype;
  for (const [i, a] of arrays.entries()) {
    if (a.dtype !== dtype) throw new Error(`${source}: level ${i} is ${a.dtype} but level 0 is ${dtype}`);
  }
  const source_ = new OmeZarrSource(source, image, arrays, layout, opts);
  await source_.prepareDisplay();
  return source_;
}

function axisLayout(
  image: NgffImage,
  shape: readonly number[],
  indices: Readonly<Record<string, number>>,
  source: string,
): AxisLayout {
  const names = image.axes.map((a) => a.name);
  for (const name of Object.keys(indices)) {
    if (!names.includes(name) || ['x', 'y'].includes(name)) {
      throw new Error(`${source}: cannot pick an index along "${name}": the axes are ${names.join(',')}`);
    }
  }
  let c = image.axes.findIndex((a) => a.type === 'channel');
  if (c < 0) c = names.indexOf('c');
  const fixed = new Map<number, number>();
  image.axes.forEach((axis, i) => {
    if (axis.name === 'x' || axis.name === 'y' || i === c) return;
    const index = indices[axis.name] ?? 0;
    if (!Number.isInteger(index) || index < 0 || index >= shape[i]) {
      throw new Error(`${source}: index ${index} along "${axis.name}" is outside 0..${shape[i] - 1}`);
    }
    fixed.set(i, index);
  });
  if (c >= 0 && indices.c !== undefined) fixed.set(c, indices.c);
  return { x: names.indexOf('x'), y: names.indexOf('y'), c, fixed };
}

class OmeZarrSource implements PyramidSource {
  readonly format = 'ome-zarr';
  readonly levels: readonly SlideLevel[];
  readonly mpp: { x: number; y: number } | null;
  readonly objectivePower = null;
  readonly properties: Record<string, string>;
  readonly associatedImages: readonly string[] = [];

  readonly #image: NgffImage;
  readonly #arrays: NumericArray[];
  readonly #layout: AxisLayout;
  readonly #cache: ChunkCache<Chunk>;
  readonly #concurrency: number;
  /** Bytes of the largest decoded chunk of any level. */
  readonly #chunkBytes: number;
  #shown: ShownChannel[] = [];
  #closed = false;

  constructor(
    readonly source: string,
    image: NgffImage,
    arrays: NumericArray[],
    layout: AxisLayout,
    opts: OmeZarrOptions,
  ) {
    this.#image = image;
    this.#arrays = arrays;
    this.#layout = layout;
    this.#cache = new ChunkCache(opts.cacheBytes ?? DEFAULT_CACHE_BYTES);
    const chunkBytes = Math.max(
      ...arrays.map((a) => a.chunks.reduce((p, v) => p * v, 1) * (DTYPE_BYTES[a.dtype] ?? 8)),
    );
    this.#chunkBytes = chunkBytes;
    this.#concurrency = Math.max(
      1,
      Math.min(opts.concurrency ?? 8, Math.floor(IN_FLIGHT_BYTES / chunkBytes)),
    );
    this.levels = arrays.map((a, i) => this.#levelOf(a, i));
    this.mpp = this.#mppOf();
    this.properties = this.#propertiesOf();
  }

  #levelOf(array: NumericArray, index: number): SlideLevel {
    const { x, y } = this.#layout;
    const width = array.shape[x];
    const height = array.shape[y];
    const s0 = this.#image.datasets[0].scale;
    const s = this.#image.datasets[index].scale;
    const w0 = this.#arrays[0].shape[x];
    const h0 = this.#arrays[0].shape[y];
    const dsx = s && s0 && s0[x] > 0 ? s[x] / s0[x] : w0 / width;
    const dsy = s && s0 && s0[y] > 0 ? s[y] / s0[y] : h0 / height;
    return {
      width,
      height,
      downsample: (dsx + dsy) / 2,
      tileWidth: array.chunks[x],
      tileHeight: array.chunks[y],
    };
  }

  #mppOf(): { x: number; y: number } | null {
    const { x, y } = this.#layout;
    const scale = this.#image.datasets[0].scale;
    const ux = micrometresPerUnit(this.#image.axes[x].unit);
    const uy = micrometresPerUnit(this.#image.axes[y].unit);
    if (!scale || ux === null || uy === null) return null;
    return { x: scale[x] * ux, y: scale[y] * uy };
  }

  #propertiesOf(): Record<string, string> {
    const props: Record<string, string> = {
      'ome-zarr.version': this.#image.version,
      'ome-zarr.zarr-format': String(this.#image.zarrFormat),
      'ome-zarr.axes': this.#image.axes.map((a) => a.name).join(','),
      'ome-zarr.dtype': this.#arrays[0].dtype,
      'ome-zarr.channels': String(this.#channelCount()),
      'ome-zarr.level-paths': this.#image.datasets.map((d) => d.path).join(','),
    };
    if (this.#image.name !== null) props['ome-zarr.name'] = this.#image.name;
    for (const [axis, index] of this.#layout.fixed)
      props[`ome-zarr.index.${this.#image.axes[axis].name}`] = String(index);
    if (this.mpp) {
      props['openslide.mpp-x'] = String(this.mpp.x);
      props['openslide.mpp-y'] = String(this.mpp.y);
    }
    return props;
  }

  #channelCount(): number {
    const { c, fixed } = this.#layout;
    return c < 0 || fixed.has(c) ? 1 : this.#arrays[0].shape[c];
  }

  /** Chooses the shown channels and their windows (reading the smallest level when min/max is needed). */
  async prepareDisplay(): Promise<void> {
    const dtype = this.#arrays[0].dtype;
    const { c, fixed } = this.#layout;
    const channelOffset = c >= 0 && fixed.has(c) ? (fixed.get(c) as number) : 0;
    const chosen = chooseChannels(this.#channelCount(), this.#image.omeroChannels).map((ch) => ({
      ...ch,
      channel: ch.channel + channelOffset,
    }));
    const windows = chosen.map((ch) => fixedWindow(dtype, this.#image.omeroChannels[ch.channel]));
    const needRange = chosen.filter((_, i) => windows[i] === null).map((ch) => ch.channel);
    const ranges =
      needRange.length > 0 ? await this.#valueRanges(needRange) : new Map<number, [number, number]>();
    this.#shown = chosen.map((ch, i) => {
      const [start, end] = windows[i] ?? (ranges.get(ch.channel) as [number, number]);
      return { ...ch, start, end, map: makeMapper(start, end), lut: makeLut(dtype, start, end) };
    });
    this.#shown.forEach((s, i) => {
      this.properties[`ome-zarr.display.${i}`] =
        `channel ${s.channel} window ${s.start}..${s.end} colour ${s.color.join(',')}`;
    });
  }

  /** Min/max (NaN ignored) of each channel over a bounded window at the centre of the smallest level. */
  async #valueRanges(channels: number[]): Promise<Map<number, [number, number]>> {
    const level = this.#arrays.length - 1;
    const info = this.levels[level];
    const width = Math.min(info.width, STATS_EDGE);
    const height = Math.min(info.height, STATS_EDGE);
    const x0 = Math.floor((info.width - width) / 2);
    const y0 = Math.floor((info.height - height) / 2);
    const ranges = new Map<number, [number, number]>();
    for (const channel of channels) {
      let lo = Number.POSITIVE_INFINITY;
      let hi = Number.NEGATIVE_INFINITY;
      await this.#forEachRow(level, channel, x0, y0, width, height, (data, start, step, n) => {
        for (let k = 0, i = start; k < n; k++, i += step) {
          const v = Number(data[i]);
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      });
      if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
      ranges.set(channel, [lo, hi > lo ? hi : lo + 1]);
    }
    return ranges;
  }

  async readAssociatedImage(name: string): Promise<RGBAImage> {
    throw new Error(`${this.source}: OME-Zarr images have no associated image "${name}"`);
  }

  async readLevel(level: number, x: number, y: number, width: number, height: number): Promise<RGBAImage> {
    if (this.#closed) throw new Error(`${this.source}: read after close()`);
    const info = this.levels[level];
    if (!info) throw new Error(`${this.source}: no level ${level} (${this.levels.length} levels)`);
    for (const v of [x, y, width, height]) {
      if (!Number.isInteger(v))
        throw new Error(`${this.source}: readLevel needs integer coordinates, got ${v}`);
    }
    if (x < 0 || y < 0 || width < 0 || height < 0 || x + width > info.width || y + height > info.height) {
      throw new Error(
        `${this.source}: region (${x}, ${y}, ${width}×${height}) is outside level ${level} (${info.width}×${info.height})`,
      );
    }
    const pixels = width * height;
    // Output, one plane per shown channel, and the chunks fetched at once: held against the process budget.
    const bytes = pixels * (4 + this.#shown.length) + this.#concurrency * this.#chunkBytes;
    const release = await processDecodeBudget.reserve(
      this.source,
      bytes,
      `reading ${width}x${height} pixels`,
    );
    try {
      const planes = await this.#channelPlanes(level, x, y, width, height);
      return { data: composeRgba(planes, this.#shown, pixels), width, height };
    } finally {
      release();
    }
  }

  /** One 0..255 plane per shown channel over the rectangle. */
  async #channelPlanes(
    level: number,
    x: number,
    y: number,
    width: number,
    height: number,
  ): Promise<Uint8Array[]> {
    const pixels = width * height;
    return Promise.all(
      this.#shown.map(async (shown) => {
        const plane = new Uint8Array(pixels);
        const { lut, map } = shown;
        const identity = lut !== null && isIdentity(lut.lut, lut.offset);
        await this.#forEachRow(level, shown.channel, x, y, width, height, (data, start, step, n, px, py) => {
          let o = (py - y) * width + (px - x);
          if (identity && step === 1 && data instanceof Uint8Array) {
            plane.set(data.subarray(start, start + n), o);
          } else if (lut) {
            const { lut: table, offset } = lut;
            for (let k = 0, i = start; k < n; k++, i += step)
              plane[o++] = table[(data[i] as number) + offset];
          } else {
            for (let k = 0, i = start; k < n; k++, i += step) plane[o++] = map(data[i]);
          }
        });
        return plane;
      }),
    );
  }

  /**
   * Visits one channel inside a level rectangle row by row, chunk by chunk (chunks fetched concurrently):
   * `row(data, start, step, n, x, y)` covers n values data[start + k·step] for level pixels (x + k, y).
   */
  async #forEachRow(
    level: number,
    channel: number,
    x: number,
    y: number,
    width: number,
    height: number,
    row: (data: Chunk['data'], start: number, step: number, n: number, x: number, y: number) => void,
  ): Promise<void> {
    if (width === 0 || height === 0) return;
    const array = this.#arrays[level];
    const { x: xi, y: yi, c: ci, fixed } = this.#layout;
    const chunkShape = array.chunks;
    const cw = chunkShape[xi];
    const ch = chunkShape[yi];
    // Chunk coordinates and in-chunk offsets along the non-spatial axes.
    const baseCoords = array.shape.map(() => 0);
    const inChunk = array.shape.map(() => 0);
    for (const [axis, index] of fixed) {
      baseCoords[axis] = Math.floor(index / chunkShape[axis]);
      inChunk[axis] = index % chunkShape[axis];
    }
    if (ci >= 0 && !fixed.has(ci)) {
      baseCoords[ci] = Math.floor(channel / chunkShape[ci]);
      inChunk[ci] = channel % chunkShape[ci];
    }
    const chunkCount =
      (Math.floor((y + height - 1) / ch) - Math.floor(y / ch) + 1) *
      (Math.floor((x + width - 1) / cw) - Math.floor(x / cw) + 1);
    if (chunkCount > MANY_CHUNKS && cw * ch < MIN_CHUNK_AREA) {
      throw new Error(
        `${this.source}: reading ${width}x${height} pixels of level ${level} needs ${chunkCount} chunks of ${cw}x${ch} pixels: the chunks are too small to read efficiently (rechunk to at least 32x32)`,
      );
    }
    const tasks: (() => Promise<void>)[] = [];
    for (let cy = Math.floor(y / ch); cy <= Math.floor((y + height - 1) / ch); cy++) {
      for (let cx = Math.floor(x / cw); cx <= Math.floor((x + width - 1) / cw); cx++) {
        tasks.push(async () => {
          const coords = baseCoords.slice();
          coords[yi] = cy;
          coords[xi] = cx;
          const chunk = await this.#chunk(level, coords);
          let base = 0;
          for (let a = 0; a < inChunk.length; a++) base += inChunk[a] * chunk.stride[a];
          const sx = chunk.stride[xi];
          const sy = chunk.stride[yi];
          const x0 = Math.max(x, cx * cw);
          const x1 = Math.min(x + width, (cx + 1) * cw);
          const y0 = Math.max(y, cy * ch);
          const y1 = Math.min(y + height, (cy + 1) * ch);
          const data = chunk.data;
          for (let py = y0; py < y1; py++)
            row(data, base + (py - cy * ch) * sy + (x0 - cx * cw) * sx, sx, x1 - x0, x0, py);
        });
      }
    }
    await runLimited(tasks, this.#concurrency);
  }

  #chunk(level: number, coords: number[]): Promise<Chunk> {
    const array = this.#arrays[level];
    return this.#cache.get(
      `${level}:${coords.join(',')}`,
      async () => {
        try {
          const chunk = await array.getChunk(coords);
          // Decoded length must be what the chunk shape says: compressed bytes read as raw, truncated or
          // garbage data would otherwise become pixels.
          const expected = chunk.shape.reduce((p, v) => p * v, 1);
          if (chunk.data.length !== expected) {
            throw new Error(
              `decodes to ${chunk.data.length} values where the chunk shape ${chunk.shape.join('x')} holds ${expected} (corrupt data or wrong codecs)`,
            );
          }
          return chunk;
        } catch (err) {
          const path = `${this.#image.groupPath}${this.#image.datasets[level].path}`;
          const cause = (err as Error & { cause?: Error }).cause;
          const detail = cause ? `${(err as Error).message}: ${cause.message}` : (err as Error).message;
          throw new Error(`${this.source}/${path}: chunk ${coords.join(',')} could not be read: ${detail}`);
        }
      },
      (chunk) => (chunk.data as { byteLength?: number }).byteLength ?? chunk.data.length * 8,
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#cache.clear();
  }
}

function isIdentity(lut: Uint8Array, offset: number): boolean {
  return offset === 0 && lut.length === 256 && lut.every((v, i) => v === i);
}

/** Runs tasks `limit` at a time; after the first failure no further task starts (the read has failed anyway). */
async function runLimited(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < tasks.length && !failed) {
      const task = tasks[next++];
      try {
        await task();
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

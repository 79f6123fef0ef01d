/**
 * Writes a segmentation as an OME-NGFF label image inside an OME-Zarr image: NGFF 0.4 on Zarr v2 (default) or
 * NGFF 0.5 on Zarr v3. `<image>/labels/<name>/` with `image-label` colours, listed in `<image>/labels`.
 *
 * Level 0 is written chunk by chunk as the caller hands in tiles of the full-resolution label map, in any
 * order and any alignment: a chunk is encoded and written (atomically: temporary file + rename) as soon as
 * every one of its pixels has been supplied, so memory holds only partly covered chunks. A tile that touches
 * an already written chunk updates it on disk (last write wins). With `resume`, chunks already on disk from an
 * earlier run are kept and the tiles' pixels for them are ignored (`isTileDone` lets the caller skip work).
 * `finish()` builds the pyramid (each level the 2×2 mode of the previous one, ties to the top-left pixel, so
 * labels are never blended) by reading the previous level chunk by chunk, then writes the metadata last.
 */
import { access, mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  arrayMeta,
  arrayMetaFile,
  type ChunkCodec,
  type ChunkCompression,
  chunkPath,
  makeChunkCodec,
  RESUME_KEYS,
  readGroupAttributes,
  readJson,
  writeAtomic,
  writeGroup,
  writeJsonAtomic,
  type ZarrFormat,
} from './zarr-layout.ts';

export type LabelCompression = ChunkCompression;

export interface LabelWriterOptions {
  /** The OME-Zarr image folder; the labels go to `<imagePath>/labels/<name>/`. Created if absent. */
  imagePath: string;
  /** Label image name (a folder name: letters, digits, '.', '_', '-'). */
  name: string;
  /** Size of the full-resolution label map. */
  width: number;
  height: number;
  /** Chunk edge in pixels (default 256). */
  chunkSize?: number;
  /** Pyramid levels including level 0 (default: halve until the level fits in one chunk). */
  levels?: number;
  /** Default 'zlib'. */
  compression?: LabelCompression;
  /** zlib level 1-9 or blosc clevel (default 1 for zlib, 5 for blosc). */
  compressionLevel?: number;
  /** Class names by label value, written as image-label `properties` ({ "label-value", "class" }). */
  classNames?: readonly string[];
  /** RGBA colour per label value; default: 0 transparent, others from a fixed palette. */
  colors?: Readonly<Record<number, readonly [number, number, number, number]>>;
  /**
   * Level-0 label pixel size, in the parent image's level-0 pixels (e.g. 4 for a stride-4 map); the NGFF
   * scale is this times the parent's level-0 scale when the parent has multiscales (default 1).
   */
  downsample?: number;
  /**
   * Physical size of a level-0 label pixel (e.g. { x: 0.5, y: 0.5, unit: 'micrometer' }); when given it is the
   * NGFF scale, whatever the parent image says (`downsample` is then unused).
   */
  scale?: { x: number; y: number; unit: string };
  /** 2 (default): Zarr v2 + NGFF 0.4; 3: Zarr v3 + NGFF 0.5. */
  zarrFormat?: ZarrFormat;
  /** Keep chunks that already exist on disk (from an interrupted run with the same shape and chunks). */
  resume?: boolean;
  /** Progress lines (pyramid building); default silent. */
  log?: (line: string) => void;
}

export interface LabelWriteSummary {
  path: string;
  levels: { width: number; height: number; chunks: number }[];
  /** Level-0 chunks written in this run (not counting rewrites). */
  chunksWritten: number;
  /** Level-0 chunks kept from an earlier run (resume). */
  chunksResumed: number;
  /** Level-0 chunks flushed at finish() although not every pixel was supplied (the rest is 0). */
  chunksIncomplete: number;
  /** Level-0 chunks that never received a pixel (absent: read as the fill value 0). */
  chunksMissing: number;
}

interface PendingChunk {
  data: Uint8Array;
  covered: Uint8Array;
  remaining: number;
}

/** A tab10-like palette: distinct, readable colours for label values 1, 2, ... */
const PALETTE: [number, number, number][] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];

export async function createLabelWriter(opts: LabelWriterOptions): Promise<OmeZarrLabelWriter> {
  const codec = await makeChunkCodec(opts.compression ?? 'zlib', opts.zarrFormat ?? 2, opts.compressionLevel);
  const writer = new OmeZarrLabelWriter(opts, codec);
  await writer.init();
  return writer;
}

export class OmeZarrLabelWriter {
  readonly path: string;
  readonly width: number;
  readonly height: number;
  readonly chunkSize: number;
  readonly #opts: LabelWriterOptions;
  readonly #codec: ChunkCodec;
  readonly #format: ZarrFormat;
  readonly #cols: number;
  readonly #rows: number;
  readonly #pending = new Map<number, PendingChunk>();
  /** Level-0 chunk state: 0 untouched, 1 written this run, 2 kept from an earlier run. */
  readonly #state: Uint8Array;
  readonly #dirs = new Set<string>();
  #queue: Promise<void> = Promise.resolve();
  #written = 0;
  #finished = false;

  constructor(opts: LabelWriterOptions, codec: ChunkCodec) {
    if (!/^[A-Za-z0-9._-]+$/.test(opts.name) || opts.name.startsWith('.')) {
      throw new Error(`label writer: invalid label name "${opts.name}" (use letters, digits, '.', '_', '-')`);
    }
    for (const [k, v] of Object.entries({ width: opts.width, height: opts.height })) {
      if (!Number.isSafeInteger(v) || v <= 0)
        throw new Error(`label writer: ${k} must be a positive integer (got ${v})`);
    }
    const chunkSize = opts.chunkSize ?? 256;
    if (!Number.isInteger(chunkSize) || chunkSize < 1)
      throw new Error(`label writer: invalid chunkSize ${chunkSize}`);
    this.#opts = opts;
    this.#codec = codec;
    this.#format = opts.zarrFormat ?? 2;
    if (this.#format !== 2 && this.#format !== 3)
      throw new Error(`label writer: zarrFormat must be 2 or 3 (got ${this.#format})`);
    this.path = join(opts.imagePath, 'labels', opts.name);
    this.width = opts.width;
    this.height = opts.height;
    this.chunkSize = chunkSize;
    this.#cols = Math.ceil(opts.width / chunkSize);
    this.#rows = Math.ceil(opts.height / chunkSize);
    this.#state = new Uint8Array(this.#cols * this.#rows);
  }

  /** Creates level 0's array metadata; with `resume`, takes note of the chunks already on disk. */
  async init(): Promise<void> {
    const level0 = join(this.path, '0');
    const zarray = this.#zarray(this.width, this.height);
    const metaFile = join(level0, arrayMetaFile(this.#format));
    if (this.#opts.resume) {
      const existing = await readJson(metaFile);
      if (existing) {
        for (const key of RESUME_KEYS[this.#format]) {
          if (JSON.stringify(existing[key]) !== JSON.stringify(zarray[key])) {
            throw new Error(
              `${level0}: cannot resume: existing ${key} ${JSON.stringify(existing[key])} differs from ${JSON.stringify(zarray[key])}`,
            );
          }
        }
        for (let cy = 0; cy < this.#rows; cy++) {
          for (let cx = 0; cx < this.#cols; cx++) {
            if (await exists(this.#chunkPath(0, cx, cy))) this.#state[cy * this.#cols + cx] = 2;
          }
        }
      }
    } else {
      // A fresh run must not mix with chunks of an earlier one.
      await rm(this.path, { recursive: true, force: true });
    }
    await writeJsonAtomic(metaFile, zarray);
  }

  /** True when every chunk under the tile is already on disk (so a resumed run can skip computing it). */
  isTileDone(x: number, y: number, width: number, height: number): boolean {
    const cs = this.chunkSize;
    for (let cy = Math.floor(y / cs); cy <= Math.floor((y + height - 1) / cs); cy++) {
      for (let cx = Math.floor(x / cs); cx <= Math.floor((x + width - 1) / cs); cx++) {
        if (this.#state[cy * this.#cols + cx] === 0) return false;
      }
    }
    return true;
  }

  /**
   * Hands in a tile of the full-resolution label map (row-major, one byte per pixel, width × height). The tile is
   * read when its turn in the write queue comes: leave it unchanged until the returned promise settles.
   */
  writeTile(x: number, y: number, width: number, height: number, labels: Uint8Array): Promise<void> {
    if (this.#finished) return Promise.reject(new Error(`${this.path}: writeTile after finish()`));
    for (const v of [x, y, width, height]) {
      if (!Number.isInteger(v))
        return Promise.reject(new Error(`${this.path}: writeTile needs integers, got ${v}`));
    }
    if (x < 0 || y < 0 || width <= 0 || height <= 0 || x + width > this.width || y + height > this.height) {
      return Promise.reject(
        new Error(
          `${this.path}: tile (${x}, ${y}, ${width}×${height}) is outside the ${this.width}×${this.height} label map`,
        ),
      );
    }
    if (labels.length !== width * height) {
      return Promise.reject(
        new Error(`${this.path}: tile has ${labels.length} values, expected ${width}×${height}`),
      );
    }
    // Serialised so that chunk buffers and rewrites never race.
    const run = this.#queue.then(() => this.#applyTile(x, y, width, height, labels));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #applyTile(x: number, y: number, width: number, height: number, labels: Uint8Array): Promise<void> {
    const cs = this.chunkSize;
    for (let cy = Math.floor(y / cs); cy <= Math.floor((y + height - 1) / cs); cy++) {
      for (let cx = Math.floor(x / cs); cx <= Math.floor((x + width - 1) / cs); cx++) {
        const index = cy * this.#cols + cx;
        const state = this.#state[index];
        if (state === 2) continue;
        const x0 = Math.max(x, cx * cs);
        const x1 = Math.min(x + width, (cx + 1) * cs);
        const y0 = Math.max(y, cy * cs);
        const y1 = Math.min(y + height, (cy + 1) * cs);
        if (state === 1) {
          // Already on disk: update it in place.
          const data = await this.#readChunk(0, cx, cy);
          for (let py = y0; py < y1; py++) {
            data.set(
              labels.subarray((py - y) * width + (x0 - x), (py - y) * width + (x1 - x)),
              (py - cy * cs) * cs + (x0 - cx * cs),
            );
          }
          await this.#writeChunk(0, cx, cy, data);
          continue;
        }
        let chunk = this.#pending.get(index);
        const cw = Math.min(cs, this.width - cx * cs);
        const ch = Math.min(cs, this.height - cy * cs);
        if (!chunk && x0 === cx * cs && y0 === cy * cs && x1 - x0 === cw && y1 - y0 === ch) {
          // The tile covers this whole chunk (the whole-slide loop hands in exactly its chunks): its rows straight
          // into the chunk, no coverage bookkeeping (the same bytes the general path assembles). A tile that is
          // exactly one full chunk is already its bytes: encoded as it is (writeTile reads tiles after it returns
          // anyway, when their turn in the queue comes).
          const exact = width === cs && height === cs && x === x0 && y === y0;
          const data = exact ? labels : new Uint8Array(cs * cs);
          for (let py = 0; !exact && py < ch; py++) {
            const src = (y0 + py - y) * width + (x0 - x);
            data.set(labels.subarray(src, src + cw), py * cs);
          }
          await this.#completeChunk(index, cx, cy, data);
          continue;
        }
        if (!chunk) {
          const valid = Math.min(cs, this.width - cx * cs) * Math.min(cs, this.height - cy * cs);
          chunk = { data: new Uint8Array(cs * cs), covered: new Uint8Array(cs * cs), remaining: valid };
          this.#pending.set(index, chunk);
        }
        for (let py = y0; py < y1; py++) {
          const src = (py - y) * width - x;
          const dst = (py - cy * cs) * cs - cx * cs;
          for (let px = x0; px < x1; px++) {
            chunk.data[dst + px] = labels[src + px];
            if (chunk.covered[dst + px] === 0) {
              chunk.covered[dst + px] = 1;
              chunk.remaining--;
            }
          }
        }
        if (chunk.remaining === 0) {
          this.#pending.delete(index);
          await this.#completeChunk(index, cx, cy, chunk.data);
        }
      }
    }
  }

  async #completeChunk(index: number, cx: number, cy: number, data: Uint8Array): Promise<void> {
    await this.#writeChunk(0, cx, cy, data);
    this.#state[index] = 1;
    this.#written++;
  }

  /** Flushes partial chunks, builds the pyramid from level 0 chunk by chunk, writes the NGFF metadata. */
  async finish(): Promise<LabelWriteSummary> {
    await this.#queue;
    if (this.#finished) throw new Error(`${this.path}: finish() called twice`);
    this.#finished = true;
    const incomplete = this.#pending.size;
    for (const [index, chunk] of this.#pending) {
      await this.#writeChunk(0, index % this.#cols, Math.floor(index / this.#cols), chunk.data);
      this.#state[index] = 1;
      this.#written++;
    }
    this.#pending.clear();

    const sizes = this.#levelSizes();
    for (let level = 1; level < sizes.length; level++) {
      await this.#buildLevel(level, sizes[level - 1], sizes[level]);
    }
    await this.#writeMetadata(sizes);
    let resumed = 0;
    let missing = 0;
    for (const s of this.#state) {
      if (s === 2) resumed++;
      if (s === 0) missing++;
    }
    return {
      path: this.path,
      levels: sizes.map(([w, h]) => ({
        width: w,
        height: h,
        chunks: Math.ceil(w / this.chunkSize) * Math.ceil(h / this.chunkSize),
      })),
      chunksWritten: this.#written,
      chunksResumed: resumed,
      chunksIncomplete: incomplete,
      chunksMissing: missing,
    };
  }

  #levelSizes(): [number, number][] {
    const sizes: [number, number][] = [[this.width, this.height]];
    const wanted = this.#opts.levels;
    for (;;) {
      const [w, h] = sizes[sizes.length - 1];
      if (wanted !== undefined ? sizes.length >= wanted : Math.max(w, h) <= this.chunkSize) break;
      if (w === 1 && h === 1) break;
      sizes.push([Math.ceil(w / 2), Math.ceil(h / 2)]);
    }
    return sizes;
  }

  /** One level from the previous by the 2×2 mode, output chunk by output chunk (4 input chunks at most). */
  async #buildLevel(level: number, [pw, ph]: [number, number], [w, h]: [number, number]): Promise<void> {
    const cs = this.chunkSize;
    const dir = join(this.path, String(level));
    await writeJsonAtomic(join(dir, arrayMetaFile(this.#format)), this.#zarray(w, h));
    const cols = Math.ceil(w / cs);
    const rows = Math.ceil(h / cs);
    const started = performance.now();
    for (let cy = 0; cy < rows; cy++) {
      for (let cx = 0; cx < cols; cx++) {
        // The 2×2 block of input chunks this output chunk comes from.
        const inputs = await Promise.all(
          [0, 1, 2, 3].map((q) => {
            const ix = 2 * cx + (q & 1);
            const iy = 2 * cy + (q >> 1);
            return ix * cs < pw && iy * cs < ph ? this.#readChunk(level - 1, ix, iy) : null;
          }),
        );
        const out = new Uint8Array(cs * cs);
        const outW = Math.min(cs, w - cx * cs);
        const outH = Math.min(cs, h - cy * cs);
        const votes = [0, 0, 0, 0];
        for (let oy = 0; oy < outH; oy++) {
          for (let ox = 0; ox < outW; ox++) {
            // Level-(l-1) pixel of this block's top-left, relative to the 2×2 input chunk block.
            const sx = 2 * ox;
            const sy = 2 * oy;
            let n = 0;
            for (let dy = 0; dy < 2; dy++) {
              for (let dx = 0; dx < 2; dx++) {
                const gx = 2 * cx * cs + sx + dx;
                const gy = 2 * cy * cs + sy + dy;
                if (gx >= pw || gy >= ph) continue;
                const bx = sx + dx >= cs ? 1 : 0;
                const by = sy + dy >= cs ? 1 : 0;
                const src = inputs[by * 2 + bx] as Uint8Array;
                votes[n++] = src[(sy + dy - by * cs) * cs + (sx + dx - bx * cs)];
              }
            }
            out[oy * cs + ox] = modeOf(votes, n);
          }
        }
        await this.#writeChunk(level, cx, cy, out);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    this.#opts.log?.(
      `labels ${this.#opts.name}: level ${level} ${w}×${h} (${cols * rows} chunks) in ${seconds.toFixed(1)} s`,
    );
  }

  async #writeMetadata(sizes: [number, number][]): Promise<void> {
    const { imagePath, name } = this.#opts;
    const v2 = this.#format === 2;
    let base: { x: number; y: number; unit: string | null };
    if (this.#opts.scale) base = this.#opts.scale;
    else {
      const parent = await parentScale(imagePath);
      const ds = this.#opts.downsample ?? 1;
      base = { x: parent.x * ds, y: parent.y * ds, unit: parent.unit };
    }
    const axes = [
      { name: 'y', type: 'space', ...(base.unit ? { unit: base.unit } : {}) },
      { name: 'x', type: 'space', ...(base.unit ? { unit: base.unit } : {}) },
    ];
    const datasets = sizes.map((_, level) => ({
      path: String(level),
      coordinateTransformations: [{ type: 'scale', scale: [base.y * 2 ** level, base.x * 2 ** level] }],
    }));
    const values = new Set<number>(Object.keys(this.#opts.colors ?? {}).map(Number));
    const classNames = this.#opts.classNames ?? [];
    for (let v = 0; v < Math.max(classNames.length, 2); v++) values.add(v);
    const colors = [...values]
      .sort((a, b) => a - b)
      .map((v) => ({ 'label-value': v, rgba: [...(this.#opts.colors?.[v] ?? defaultColor(v))] }));
    const properties = classNames.map((c, v) => ({ 'label-value': v, class: c }));
    // NGFF 0.4 versions every object; 0.5 states the version once, in the group's "ome" attributes.
    const version = v2 ? { version: '0.4' } : {};
    await writeGroup(this.#format, this.path, {
      multiscales: [
        {
          ...version,
          name,
          axes,
          datasets,
          type: 'mode',
          metadata: { method: '2x2 mode (ties: top-left pixel)' },
        },
      ],
      'image-label': {
        ...version,
        colors,
        ...(properties.length ? { properties } : {}),
        source: { image: '../../' },
      },
    });
    const labelsDir = join(imagePath, 'labels');
    const listing = await readGroupAttributes(this.#format, labelsDir);
    const names = Array.isArray(listing.labels) ? (listing.labels as unknown[]).map(String) : [];
    if (!names.includes(name)) names.push(name);
    const { version: _, ...rest } = listing;
    await writeGroup(this.#format, labelsDir, { ...rest, labels: names });
    if (!(await exists(join(imagePath, '.zgroup'))) && !(await exists(join(imagePath, 'zarr.json')))) {
      await writeGroup(this.#format, imagePath, null);
    }
  }

  #zarray(width: number, height: number): Record<string, unknown> {
    return arrayMeta(
      this.#format,
      [height, width],
      [this.chunkSize, this.chunkSize],
      ['y', 'x'],
      this.#codec,
    );
  }

  #chunkPath(level: number, cx: number, cy: number): string {
    return chunkPath(this.#format, join(this.path, String(level)), [cy, cx]);
  }

  async #writeChunk(level: number, cx: number, cy: number, data: Uint8Array): Promise<void> {
    const path = this.#chunkPath(level, cx, cy);
    const dir = dirname(path);
    if (!this.#dirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.#dirs.add(dir);
    }
    await writeAtomic(path, await this.#codec.encode(data));
  }

  async #readChunk(level: number, cx: number, cy: number): Promise<Uint8Array> {
    const path = this.#chunkPath(level, cx, cy);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT')
        return new Uint8Array(this.chunkSize * this.chunkSize);
      throw err;
    }
    const data = await this.#codec.decode(bytes);
    if (data.length !== this.chunkSize * this.chunkSize) {
      throw new Error(`${path}: chunk decodes to ${data.length} bytes, expected ${this.chunkSize ** 2}`);
    }
    return data;
  }
}

/** The most frequent of the first n values; ties go to the earliest (the top-left pixel, i.e. nearest). */
function modeOf(values: number[], n: number): number {
  let best = values[0];
  let bestCount = 0;
  for (let i = 0; i < n; i++) {
    let count = 0;
    for (let j = 0; j < n; j++) if (values[j] === values[i]) count++;
    if (count > bestCount) {
      best = values[i];
      bestCount = count;
    }
  }
  return best;
}

function defaultColor(value: number): [number, number, number, number] {
  if (value === 0) return [0, 0, 0, 0];
  const [r, g, b] = PALETTE[(value - 1) % PALETTE.length];
  return [r, g, b, 255];
}

/** Level-0 y/x scale and unit of the parent image, or 1 and no unit when it has no multiscales. */
async function parentScale(imagePath: string): Promise<{ x: number; y: number; unit: string | null }> {
  const v2 = await readJson(join(imagePath, '.zattrs'));
  const v3 = await readJson(join(imagePath, 'zarr.json'));
  const attrs = (v3?.attributes as Record<string, unknown> | undefined) ?? v2;
  const ome = (attrs?.ome as Record<string, unknown> | undefined) ?? attrs;
  const ms = Array.isArray(ome?.multiscales) ? (ome.multiscales[0] as Record<string, unknown>) : null;
  if (!ms || !Array.isArray(ms.axes) || !Array.isArray(ms.datasets)) return { x: 1, y: 1, unit: null };
  const axes = (ms.axes as unknown[]).map((a) =>
    typeof a === 'string' ? { name: a } : (a as { name: string; unit?: string }),
  );
  const xi = axes.findIndex((a) => a.name === 'x');
  const yi = axes.findIndex((a) => a.name === 'y');
  const ds0 = ms.datasets[0] as { coordinateTransformations?: { type: string; scale?: number[] }[] };
  const scale = ds0?.coordinateTransformations?.find((t) => t.type === 'scale')?.scale;
  if (xi < 0 || yi < 0 || !scale) return { x: 1, y: 1, unit: null };
  return { x: scale[xi], y: scale[yi], unit: axes[xi].unit ?? null };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * A TIFF-family slide (Aperio SVS, OME-TIFF, generic pyramidal or flat TIFF) as a PyramidSource:
 * level and associated images are TiffImages; pixels are assembled from cached, decoded blocks.
 */

import { processDecodeBudget } from '../budget.ts';
import type { ByteRange, ByteSource } from '../bytesource.ts';
import { type BlockCache, sharedBlockCache } from '../cache.ts';
// The decoder is given by the caller (Node's in-thread or pool decoder, or the browser's): no platform import here.
import type { BlockDecoder } from '../decoder.ts';
import { SlideError } from '../errors.ts';
import { takeZeroedPixelBuffer } from '../pixel-pool.ts';
import type { PyramidSource, RGBAImage, SlideLevel } from '../types.ts';
import type { TiffImage } from './image.ts';

let nextSourceId = 0;

/**
 * Per-read memory ceiling: the output plus every block a read decodes (they can be in flight together).
 * Reads through PyramidSlide come in 4096² windows, far below it; what reaches it is a crafted layout
 * (e.g. full-width strips of a very wide image).
 */
export const MAX_READ_BYTES = 1024 * 1024 * 1024;

export interface TiffSourceParts {
  format: string;
  levels: TiffImage[];
  associated: Map<string, TiffImage>;
  mpp: { x: number; y: number } | null;
  objectivePower: number | null;
  properties: Record<string, string>;
}

export class TiffPyramidSource implements PyramidSource {
  readonly source: string;
  readonly format: string;
  readonly levels: readonly SlideLevel[];
  readonly mpp: { x: number; y: number } | null;
  readonly objectivePower: number | null;
  readonly properties: Readonly<Record<string, string>>;
  readonly associatedImages: readonly string[];
  private readonly images: TiffImage[];
  private readonly associated: Map<string, TiffImage>;
  private readonly keyPrefix = `tiff${nextSourceId++}:`;
  private readonly cache: BlockCache;
  private closed = false;

  constructor(
    private readonly bytes: ByteSource,
    parts: TiffSourceParts,
    cache: BlockCache | undefined,
    private readonly decoder: BlockDecoder,
  ) {
    this.cache = cache ?? sharedBlockCache;
    this.source = bytes.name;
    this.format = parts.format;
    this.images = parts.levels;
    this.associated = parts.associated;
    this.associatedImages = [...parts.associated.keys()];
    this.mpp = parts.mpp;
    this.objectivePower = parts.objectivePower;
    this.properties = parts.properties;
    const w0 = parts.levels[0].width;
    const h0 = parts.levels[0].height;
    this.levels = parts.levels.map((img, i) => ({
      width: img.width,
      height: img.height,
      // OpenSlide's definition: the mean of the two axis ratios.
      downsample: i === 0 ? 1 : (w0 / img.width + h0 / img.height) / 2,
      tileWidth: img.tiled ? img.blockWidth : 0,
      tileHeight: img.tiled ? img.blockHeight : 0,
    }));
  }

  /** The byte source (an HttpByteSource counts fetched bytes). */
  get byteSource(): ByteSource {
    return this.bytes;
  }

  async readAssociatedImage(name: string): Promise<RGBAImage> {
    const img = this.associated.get(name);
    if (!img) {
      const have = this.associatedImages.join(', ') || 'none';
      throw new SlideError(this.source, `no associated image '${name}' (has: ${have})`);
    }
    const data = await this.readImage(img, `a:${name}`, 0, 0, img.width, img.height);
    return { data, width: img.width, height: img.height };
  }

  async readLevel(level: number, x: number, y: number, width: number, height: number): Promise<RGBAImage> {
    const img = this.images[level];
    if (!img) throw new SlideError(this.source, `no level ${level} (slide has ${this.images.length})`);
    const data = await this.readImage(img, `l${level}`, x, y, width, height);
    return { data, width, height };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cache.evictPrefix(this.keyPrefix);
    await this.bytes.close();
  }

  private async readImage(img: TiffImage, tag: string, x: number, y: number, w: number, h: number) {
    if (this.closed) throw new SlideError(this.source, 'slide is closed');
    if (img.unsupported) throw new SlideError(this.source, img.unsupported);
    if (w <= 0 || h <= 0) return new Uint8Array(0);
    const bw = img.blockWidth;
    const bh = img.blockHeight;
    const c0 = Math.floor(x / bw);
    const c1 = Math.floor((x + w - 1) / bw);
    const r0 = Math.floor(y / bh);
    const r1 = Math.floor((y + h - 1) / bh);

    // Fetch the encoded bytes of all blocks not yet cached in one batch (the HTTP source coalesces them).
    const blocks: Wanted[] = [];
    const missing: { key: string; ranges: ByteRange[]; first: number }[] = [];
    const wanted: ByteRange[] = [];
    for (let row = r0; row <= r1; row++) {
      // The read's last block row may need only its blocks' top rows (see BlockJob.rowsNeeded).
      const rows = Math.min(img.blockRows(row), y + h - row * bh);
      for (let col = c0; col <= c1; col++) {
        const key = `${this.keyPrefix}${tag}:${col},${row}`;
        blocks.push({ col, row, key, rows });
        if (!this.cache.has(key, rows * bw * 4)) {
          const ranges = this.blockRanges(img, col, row);
          missing.push({ key, ranges, first: wanted.length });
          wanted.push(...ranges.filter((r) => r.length > 0));
        }
      }
    }
    const readBytes = w * h * 4 + missing.length * bw * bh * 4;
    if (readBytes > MAX_READ_BYTES) {
      throw new SlideError(
        this.source,
        `reading ${w}x${h} pixels would decode ${missing.length} blocks of ${bw}x${bh} (${Math.round(readBytes / 2 ** 20)} MiB, limit ${MAX_READ_BYTES / 2 ** 20} MiB)`,
      );
    }
    const release = await processDecodeBudget.reserve(this.source, readBytes, `reading ${w}x${h} pixels`);
    try {
      return await this.readBlocks(img, x, y, w, h, blocks, missing, wanted);
    } finally {
      release();
    }
  }

  /** Fetches, decodes (through the cache) and copies the blocks of a read whose memory is reserved. */
  private async readBlocks(
    img: TiffImage,
    x: number,
    y: number,
    w: number,
    h: number,
    blocks: Wanted[],
    missing: { key: string; ranges: ByteRange[]; first: number }[],
    wanted: ByteRange[],
  ): Promise<Uint8Array> {
    // Zeroed: pixels outside the image stay transparent.
    const out = takeZeroedPixelBuffer(w * h * 4);
    const bw = img.blockWidth;
    const bh = img.blockHeight;
    const fetched = missing.length > 0 ? this.bytes.readMany(wanted) : Promise.resolve([]);
    fetched.catch(() => {}); // errors surface through each block's load below
    const byKey = new Map(missing.map((m) => [m.key, m]));

    await Promise.all(
      blocks.map(async ({ col, row, key, rows }) => {
        const load = async () => {
          const m = byKey.get(key);
          byKey.delete(key); // its bytes serve one load; a reload (below) reads them again
          const ranges = m ? m.ranges : this.blockRanges(img, col, row);
          const data = m
            ? await takeRanges(fetched, m.first, ranges)
            : await this.bytes.readMany(ranges.filter((r) => r.length > 0));
          return this.decodeBlock(img, col, row, ranges, data, rows);
        };
        const pixels = await this.cache.get(key, load, rows * bw * 4);
        const decodedRows = Math.min(img.blockRows(row), pixels.byteLength / (bw * 4));
        copyBlock(pixels, bw, col * bw, row * bh, decodedRows, out, x, y, w, h);
      }),
    );
    return out;
  }

  private blockRanges(img: TiffImage, col: number, row: number): ByteRange[] {
    const ranges = img.blockRanges(col, row);
    if (img.format.compression === 1) {
      // Uncompressed: never read more than the block holds (some writers overstate the last strip).
      const bytesPerPixel =
        (img.format.planar === 2 ? 1 : img.format.samplesPerPixel) * (img.format.bitsPerSample / 8);
      const need = img.blockWidth * img.blockRows(row) * bytesPerPixel;
      return ranges.map((r) => ({ offset: r.offset, length: Math.min(r.length, need) }));
    }
    return ranges;
  }

  private async decodeBlock(
    img: TiffImage,
    col: number,
    row: number,
    ranges: ByteRange[],
    data: Uint8Array[],
    rowsNeeded: number,
  ) {
    const rows = img.blockRows(row);
    if (ranges.every((r) => r.length === 0)) {
      // Absent block (byte count 0): white, as a scanner's empty background.
      return new Uint8Array(img.blockWidth * rows * 4).fill(255);
    }
    try {
      return await this.decoder.decode({
        format: img.format,
        data,
        width: img.blockWidth,
        height: rows,
        maxHeight: img.blockHeight,
        ...(rowsNeeded < rows ? { rowsNeeded } : {}),
      });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new SlideError(
        this.source,
        `cannot decode ${img.tiled ? 'tile' : 'strip'} (${col}, ${row}) of IFD at byte ${img.ifd.offset}: ${why}`,
      );
    }
  }
}

/** A block a read needs, and how many of its top rows. */
interface Wanted {
  col: number;
  row: number;
  key: string;
  rows: number;
}

async function takeRanges(
  fetched: Promise<Uint8Array[]>,
  first: number,
  ranges: ByteRange[],
): Promise<Uint8Array[]> {
  const all = await fetched;
  const n = ranges.filter((r) => r.length > 0).length;
  return all.slice(first, first + n);
}

/** Copies the part of a decoded block (at bx, by; width bw, `rows` rows) that falls inside the output window. */
function copyBlock(
  block: Uint8Array,
  bw: number,
  bx: number,
  by: number,
  rows: number,
  out: Uint8Array,
  x: number,
  y: number,
  w: number,
  h: number,
): void {
  const sx0 = Math.max(x, bx);
  const sx1 = Math.min(x + w, bx + bw);
  const sy0 = Math.max(y, by);
  const sy1 = Math.min(y + h, by + rows);
  if (sx1 <= sx0) return;
  const span = (sx1 - sx0) * 4;
  for (let sy = sy0; sy < sy1; sy++) {
    const src = ((sy - by) * bw + (sx0 - bx)) * 4;
    out.set(block.subarray(src, src + span), ((sy - y) * w + (sx0 - x)) * 4);
  }
}

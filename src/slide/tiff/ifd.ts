/**
 * TIFF / BigTIFF structure: header, IFD chains, SubIFDs and tag values. Every offset and count is checked
 * against the file size before anything is read or allocated, and IFD loops are detected.
 */
import type { ByteSource } from '../bytesource.ts';
import { SlideError } from '../errors.ts';
import { Tag } from './tags.ts';

/** Byte size of each TIFF field type. */
const TYPE_SIZE: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  13: 4,
  16: 8,
  17: 8,
  18: 8,
};

const MAX_IFDS = 4096;
const MAX_ENTRIES = 4096;
/** Largest tag value we read (tile offsets of a 200k² slide take ~6 MB). */
const MAX_VALUE_BYTES = 64 * 1024 * 1024;
/**
 * All tag values of a file together: tags of many IFDs may point at the same bytes, so the file size alone does
 * not bound what parsing would hold.
 */
const MAX_TOTAL_VALUE_BYTES = 256 * 1024 * 1024;

export interface TagEntry {
  type: number;
  count: number;
  /** Raw value bytes in file byte order. */
  raw: Uint8Array;
  decoded?: number[];
}

export class Ifd {
  constructor(
    /** File offset of this IFD (identifies it). */
    readonly offset: number,
    readonly tags: Map<number, TagEntry>,
    private readonly little: boolean,
    /** IFDs listed in this one's SubIFDs tag (reduced resolutions in OME-TIFF and others). */
    readonly subIfds: Ifd[] = [],
  ) {}

  has(tag: number): boolean {
    return this.tags.has(tag);
  }

  /** All numeric values of a tag (rationals as floats), or undefined when absent. */
  numbers(tag: number): number[] | undefined {
    const e = this.tags.get(tag);
    if (!e) return undefined;
    e.decoded ??= decodeNumbers(e, this.little);
    return e.decoded;
  }

  number(tag: number): number | undefined;
  number(tag: number, fallback: number): number;
  number(tag: number, fallback?: number): number | undefined {
    return this.numbers(tag)?.[0] ?? fallback;
  }

  string(tag: number): string | undefined {
    const e = this.tags.get(tag);
    if (!e) return undefined;
    let end = e.raw.length;
    while (end > 0 && e.raw[end - 1] === 0) end--;
    return new TextDecoder('latin1').decode(e.raw.subarray(0, end));
  }

  bytes(tag: number): Uint8Array | undefined {
    return this.tags.get(tag)?.raw;
  }

  get width(): number {
    return this.number(Tag.ImageWidth, 0);
  }
  get height(): number {
    return this.number(Tag.ImageLength, 0);
  }
  get tiled(): boolean {
    return this.has(Tag.TileWidth) && this.has(Tag.TileOffsets);
  }
  get description(): string {
    return this.string(Tag.ImageDescription) ?? '';
  }
}

function decodeNumbers(e: TagEntry, little: boolean): number[] {
  const view = new DataView(e.raw.buffer, e.raw.byteOffset, e.raw.byteLength);
  const out = new Array<number>(e.count);
  for (let i = 0; i < e.count; i++) {
    switch (e.type) {
      case 1:
      case 2:
      case 7:
        out[i] = view.getUint8(i);
        break;
      case 6:
        out[i] = view.getInt8(i);
        break;
      case 3:
        out[i] = view.getUint16(i * 2, little);
        break;
      case 8:
        out[i] = view.getInt16(i * 2, little);
        break;
      case 4:
      case 13:
        out[i] = view.getUint32(i * 4, little);
        break;
      case 9:
        out[i] = view.getInt32(i * 4, little);
        break;
      case 5:
        out[i] = view.getUint32(i * 8, little) / view.getUint32(i * 8 + 4, little);
        break;
      case 10:
        out[i] = view.getInt32(i * 8, little) / view.getInt32(i * 8 + 4, little);
        break;
      case 11:
        out[i] = view.getFloat32(i * 4, little);
        break;
      case 12:
        out[i] = view.getFloat64(i * 8, little);
        break;
      case 16:
      case 18:
        out[i] = Number(view.getBigUint64(i * 8, little));
        break;
      case 17:
        out[i] = Number(view.getBigInt64(i * 8, little));
        break;
      default:
        out[i] = Number.NaN;
    }
  }
  return out;
}

/** Metadata reads go through 64 KiB blocks so that an HTTP source needs few round trips for IFDs. */
class BlockReader {
  private readonly blocks = new Map<number, Promise<Uint8Array>>();
  private static readonly BLOCK = 65536;
  constructor(private readonly src: ByteSource) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || offset + length > this.src.size) {
      throw new SlideError(
        this.src.name,
        `TIFF structure points to bytes ${offset}..${offset + length} beyond the end of the file (${this.src.size} bytes): truncated or corrupt`,
      );
    }
    if (length > BlockReader.BLOCK) return this.src.read(offset, length);
    const B = BlockReader.BLOCK;
    const first = Math.floor(offset / B);
    const last = Math.floor((offset + length - 1) / B);
    const parts: Uint8Array[] = [];
    for (let b = first; b <= last; b++) parts.push(await this.block(b));
    const joined = parts.length === 1 ? parts[0] : concat(parts);
    const start = offset - first * B;
    return joined.subarray(start, start + length);
  }

  private block(index: number): Promise<Uint8Array> {
    let p = this.blocks.get(index);
    if (!p) {
      const start = index * BlockReader.BLOCK;
      p = this.src.read(start, Math.min(BlockReader.BLOCK, this.src.size - start));
      this.blocks.set(index, p);
    }
    return p;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export interface TiffFile {
  bigTiff: boolean;
  littleEndian: boolean;
  /** The main IFD chain, in file order; each with its SubIFDs attached. */
  ifds: Ifd[];
}

/** True when the bytes start like a TIFF or BigTIFF file. */
export function isTiffMagic(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const ii = head[0] === 0x49 && head[1] === 0x49;
  const mm = head[0] === 0x4d && head[1] === 0x4d;
  if (!ii && !mm) return false;
  const version = ii ? head[2] | (head[3] << 8) : (head[2] << 8) | head[3];
  return version === 42 || version === 43;
}

export async function parseTiff(src: ByteSource): Promise<TiffFile> {
  const name = src.name;
  if (src.size < 8) throw new SlideError(name, `too small to be a TIFF file (${src.size} bytes)`);
  const reader = new BlockReader(src);
  const head = await reader.read(0, Math.min(16, src.size));
  if (!isTiffMagic(head)) throw new SlideError(name, 'not a TIFF file (bad magic bytes)');
  const little = head[0] === 0x49;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const bigTiff = view.getUint16(2, little) === 43;
  let first: number;
  if (bigTiff) {
    if (head.length < 16) throw new SlideError(name, 'truncated BigTIFF header');
    if (view.getUint16(4, little) !== 8) throw new SlideError(name, 'unsupported BigTIFF offset size');
    first = Number(view.getBigUint64(8, little));
  } else {
    first = view.getUint32(4, little);
  }
  const visited = new Set<number>();
  const ctx: ParseContext = { name, reader, little, bigTiff, visited, size: src.size, valueBytes: 0 };
  const ifds = await readChain(ctx, first, 0);
  if (ifds.length === 0) throw new SlideError(name, 'TIFF file has no images (empty IFD chain)');
  return { bigTiff, littleEndian: little, ifds };
}

interface ParseContext {
  name: string;
  reader: BlockReader;
  little: boolean;
  bigTiff: boolean;
  visited: Set<number>;
  size: number;
  /** Bytes of out-of-line tag values read so far. */
  valueBytes: number;
}

async function readChain(ctx: ParseContext, offset: number, depth: number, limit = Infinity): Promise<Ifd[]> {
  const chain: Ifd[] = [];
  while (offset !== 0 && chain.length < limit) {
    if (ctx.visited.has(offset))
      throw new SlideError(ctx.name, `IFD loop: IFD at byte ${offset} is referenced twice`);
    if (ctx.visited.size >= MAX_IFDS) throw new SlideError(ctx.name, `more than ${MAX_IFDS} IFDs`);
    ctx.visited.add(offset);
    const { ifd, next } = await readIfd(ctx, offset, depth);
    chain.push(ifd);
    offset = next;
  }
  return chain;
}

async function readIfd(
  ctx: ParseContext,
  offset: number,
  depth: number,
): Promise<{ ifd: Ifd; next: number }> {
  const { reader, little, bigTiff } = ctx;
  const countSize = bigTiff ? 8 : 2;
  const entrySize = bigTiff ? 20 : 12;
  const offSize = bigTiff ? 8 : 4;
  const countBytes = await reader.read(offset, countSize);
  const cv = new DataView(countBytes.buffer, countBytes.byteOffset, countSize);
  const n = bigTiff ? Number(cv.getBigUint64(0, little)) : cv.getUint16(0, little);
  if (n === 0 || n > MAX_ENTRIES)
    throw new SlideError(ctx.name, `IFD at byte ${offset} has an implausible ${n} entries`);
  const block = await reader.read(offset + countSize, n * entrySize + offSize);
  const v = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const tags = new Map<number, TagEntry>();
  // Every entry is checked before any out-of-line value is read: a check failing while reads were already
  // in flight would leave their rejections unhandled (and kill the process), so no read starts before all pass.
  const outOfLine: { tag: number; type: number; count: number; at: number; bytes: number }[] = [];
  for (let i = 0; i < n; i++) {
    const p = i * entrySize;
    const tag = v.getUint16(p, little);
    const type = v.getUint16(p + 2, little);
    const count = bigTiff ? Number(v.getBigUint64(p + 4, little)) : v.getUint32(p + 4, little);
    const size = TYPE_SIZE[type];
    if (size === undefined) continue; // unknown field types are skipped, as the TIFF spec asks
    const bytes = size * count;
    if (bytes > MAX_VALUE_BYTES)
      throw new SlideError(ctx.name, `tag ${tag} claims ${count} values (too large)`);
    const valueAt = p + (bigTiff ? 12 : 8);
    if (bytes <= offSize) {
      tags.set(tag, { type, count, raw: block.slice(valueAt, valueAt + bytes) });
      continue;
    }
    const at = bigTiff ? Number(v.getBigUint64(valueAt, little)) : v.getUint32(valueAt, little);
    if (!Number.isSafeInteger(at) || at + bytes > ctx.size) {
      throw new SlideError(
        ctx.name,
        `tag ${tag} of the IFD at byte ${offset} points to bytes ${at}..${at + bytes} beyond the end of the file (${ctx.size} bytes): truncated or corrupt`,
      );
    }
    outOfLine.push({ tag, type, count, at, bytes });
    ctx.valueBytes += bytes;
    if (ctx.valueBytes > MAX_TOTAL_VALUE_BYTES) {
      throw new SlideError(
        ctx.name,
        `TIFF tag values add up to more than ${MAX_TOTAL_VALUE_BYTES / 2 ** 20} MiB (IFD at byte ${offset}): corrupt or hostile`,
      );
    }
  }
  const values = await Promise.all(outOfLine.map((e) => reader.read(e.at, e.bytes)));
  outOfLine.forEach((e, i) => {
    tags.set(e.tag, { type: e.type, count: e.count, raw: values[i] });
  });
  const nextAt = n * entrySize;
  const next = bigTiff ? Number(v.getBigUint64(nextAt, little)) : v.getUint32(nextAt, little);
  const ifd = new Ifd(offset, tags, little);
  const subs = ifd.numbers(Tag.SubIFDs);
  if (subs && depth < 2) {
    // Writers either list every SubIFD (and may also chain them) or list the first of a chain.
    if (subs.length === 1) ifd.subIfds.push(...(await readChain(ctx, subs[0], depth + 1)));
    else for (const s of subs) ifd.subIfds.push(...(await readChain(ctx, s, depth + 1, 1)));
  }
  return { ifd, next };
}

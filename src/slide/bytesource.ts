/**
 * Random-access bytes of a slide file: a local file (positioned reads) or an HTTP(S) URL (Range requests).
 * Readers ask for exact byte ranges; `readMany` lets the HTTP source coalesce neighbouring ranges.
 */
import { readSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { SlideError } from './errors.ts';
import { type HttpLimits, httpGet } from './http.ts';

export interface ByteRange {
  offset: number;
  length: number;
}

export interface ByteSource {
  /** Path or URL, for messages. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`; throws a SlideError when they lie beyond the end. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Several ranges at once (same order as given). */
  readMany(ranges: readonly ByteRange[]): Promise<Uint8Array[]>;
  close(): Promise<void>;
}

function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new SlideError(name, `invalid byte range offset ${offset} length ${length}`);
  }
  if (offset + length > size) {
    throw new SlideError(
      name,
      `data at bytes ${offset}..${offset + length} lies beyond the end of the file (${size} bytes): truncated or corrupt`,
    );
  }
}

/** Batches of reads up to this many bytes run in the calling thread (`FileByteSource.readMany`). */
const SYNC_READ_LIMIT = 4 * 1024 * 1024;

export class FileByteSource implements ByteSource {
  private constructor(
    readonly name: string,
    readonly size: number,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string): Promise<FileByteSource> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : String(err);
      throw new SlideError(path, `cannot open: ${why}`);
    }
    const { size } = await handle.stat();
    return new FileByteSource(path, size, handle);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(out, done, length - done, offset + done);
      if (bytesRead === 0) throw new SlideError(this.name, `unexpected end of file at byte ${offset + done}`);
      done += bytesRead;
    }
    return out;
  }

  /**
   * Small batches (a region's tiles) are read with positioned reads in this thread, as libtiff does for OpenSlide:
   * from the page cache that takes microseconds, where a hop to libuv's thread pool per range costs far more than
   * the read (bench/slide-read.ts, "range reads"). Large batches go through the pool so the event loop stays free.
   */
  readMany(ranges: readonly ByteRange[]): Promise<Uint8Array[]> {
    let total = 0;
    for (const r of ranges) total += r.length;
    if (total > SYNC_READ_LIMIT) return Promise.all(ranges.map((r) => this.read(r.offset, r.length)));
    try {
      return Promise.resolve(ranges.map((r) => this.readHere(r.offset, r.length)));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private readHere(offset: number, length: number): Uint8Array {
    checkRange(this.name, this.size, offset, length);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = readSync(this.handle.fd, out, done, length - done, offset + done);
      } catch (err) {
        throw new SlideError(this.name, `cannot read bytes at ${offset + done}: ${(err as Error).message}`);
      }
      if (n === 0) throw new SlideError(this.name, `unexpected end of file at byte ${offset + done}`);
      done += n;
    }
    return out;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

export interface HttpOptions extends HttpLimits {
  /** Ranges closer than this many bytes are fetched as one request (default 64 KiB). */
  coalesceGap?: number;
}

/** Reads an http(s) URL with Range requests; needs a server that answers 206 Partial Content. */
export class HttpByteSource implements ByteSource {
  /** Bytes received over the network, for tests and benchmarks. */
  bytesFetched = 0;
  requests = 0;

  private constructor(
    readonly name: string,
    readonly size: number,
    private readonly limits: HttpLimits,
    private readonly coalesceGap: number,
  ) {}

  static async open(url: string, opts: HttpOptions = {}): Promise<HttpByteSource> {
    // A 1-byte range request both probes Range support and tells the size (Content-Range: bytes 0-0/SIZE).
    const res = await httpGet(url, url, { Range: 'bytes=0-0' }, 1, opts);
    if (res.status === 200) {
      throw new SlideError(
        url,
        'server does not support HTTP range requests (answered 200 to a Range request)',
      );
    }
    if (res.status !== 206) throw new SlideError(url, `HTTP ${res.status} ${res.statusText}`.trim());
    const total = /\/(\d+)\s*$/.exec(String(res.headers['content-range'] ?? ''));
    if (!total) throw new SlideError(url, 'server sent no total size in Content-Range');
    const size = Number(total[1]);
    if (!Number.isSafeInteger(size))
      throw new SlideError(url, `implausible total size ${total[1]} in Content-Range`);
    const source = new HttpByteSource(url, size, opts, opts.coalesceGap ?? 65536);
    source.requests = 1;
    source.bytesFetched = res.body.length;
    return source;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    if (length === 0) return new Uint8Array(0);
    const range = `bytes=${offset}-${offset + length - 1}`;
    // The body may never exceed the range asked for: an endless or oversized answer is cut off there.
    const res = await httpGet(this.name, this.name, { Range: range }, length, this.limits);
    if (res.status !== 206) {
      throw new SlideError(
        this.name,
        `HTTP ${res.status} ${res.statusText} for bytes ${offset}-${offset + length - 1}`,
      );
    }
    this.requests++;
    this.bytesFetched += res.body.length;
    // Bytes of another range with the right length would be wrong pixels: the answer must say it is this range.
    const answered = /^bytes (\d+)-(\d+)\//.exec(String(res.headers['content-range'] ?? ''));
    if (!answered || Number(answered[1]) !== offset || Number(answered[2]) !== offset + length - 1) {
      throw new SlideError(
        this.name,
        `server answered the range ${offset}-${offset + length - 1} with Content-Range ${JSON.stringify(res.headers['content-range'] ?? null)}`,
      );
    }
    if (res.body.length !== length) {
      throw new SlideError(this.name, `server sent ${res.body.length} bytes for a ${length}-byte range`);
    }
    return res.body;
  }

  /** Merges ranges that overlap or lie within `coalesceGap` of each other into single requests. */
  async readMany(ranges: readonly ByteRange[]): Promise<Uint8Array[]> {
    const order = ranges.map((r, i) => ({ ...r, i })).sort((a, b) => a.offset - b.offset);
    const groups: { offset: number; end: number; members: typeof order }[] = [];
    for (const r of order) {
      const last = groups[groups.length - 1];
      if (last && r.offset <= last.end + this.coalesceGap) {
        last.end = Math.max(last.end, r.offset + r.length);
        last.members.push(r);
      } else {
        groups.push({ offset: r.offset, end: r.offset + r.length, members: [r] });
      }
    }
    const out = new Array<Uint8Array>(ranges.length);
    await Promise.all(
      groups.map(async (g) => {
        const bytes = await this.read(g.offset, g.end - g.offset);
        for (const m of g.members)
          out[m.i] = bytes.subarray(m.offset - g.offset, m.offset - g.offset + m.length);
      }),
    );
    return out;
  }

  async close(): Promise<void> {}
}

export function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

export function openByteSource(source: string, http?: HttpOptions): Promise<ByteSource> {
  return isUrl(source) ? HttpByteSource.open(source, http) : FileByteSource.open(source);
}

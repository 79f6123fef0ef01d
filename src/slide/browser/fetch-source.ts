/**
 * Slide bytes over HTTP(S) in a browser (or any runtime with `fetch`): exact Range requests with a timeout, the
 * body checked against the requested length, neighbouring ranges coalesced into one request.
 */
import type { ByteRange, ByteSource } from '../bytesource.ts';
import { SlideError } from '../errors.ts';

export interface FetchOptions {
  /** Per-request limit, headers and body (default 30 s). */
  timeoutMs?: number;
  /** Ranges closer than this are fetched in one request (default 64 KiB). */
  coalesceGapBytes?: number;
  /** Extra headers (e.g. authorisation). */
  headers?: Record<string, string>;
}

export class FetchByteSource implements ByteSource {
  requests = 0;
  bytesFetched = 0;

  private constructor(
    readonly name: string,
    readonly size: number,
    private readonly opts: FetchOptions,
  ) {}

  /** Learns the size from the first byte's Content-Range; a server without range support is an error. */
  static async open(url: string, opts: FetchOptions = {}): Promise<FetchByteSource> {
    const res = await request(url, 'bytes=0-0', opts);
    const total = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '')?.[1];
    await res.body?.cancel();
    if (res.status !== 206 || total === undefined) {
      throw new SlideError(url, `server does not answer byte-range requests (HTTP ${res.status})`);
    }
    return new FetchByteSource(url, Number(total), opts);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    return (await this.readMany([{ offset, length }]))[0]!;
  }

  async readMany(ranges: readonly ByteRange[]): Promise<Uint8Array[]> {
    for (const r of ranges) {
      if (!Number.isSafeInteger(r.offset) || !Number.isSafeInteger(r.length) || r.offset < 0 || r.length < 0)
        throw new SlideError(this.name, `invalid byte range offset ${r.offset} length ${r.length}`);
      if (r.offset + r.length > this.size)
        throw new SlideError(
          this.name,
          `data at bytes ${r.offset}..${r.offset + r.length} lies beyond the end of the file (${this.size} bytes)`,
        );
    }
    const gap = this.opts.coalesceGapBytes ?? 64 * 1024;
    const order = ranges.map((_, i) => i).sort((a, b) => ranges[a]!.offset - ranges[b]!.offset);
    const out: Uint8Array[] = new Array(ranges.length);
    let i = 0;
    const spans: Promise<void>[] = [];
    while (i < order.length) {
      const first = ranges[order[i]!]!;
      let end = first.offset + first.length;
      let j = i + 1;
      while (j < order.length && ranges[order[j]!]!.offset <= end + gap) {
        const r = ranges[order[j]!]!;
        end = Math.max(end, r.offset + r.length);
        j++;
      }
      const members = order.slice(i, j);
      const start = first.offset;
      spans.push(
        this.fetchSpan(start, end).then((bytes) => {
          for (const k of members) {
            const r = ranges[k]!;
            out[k] = bytes.subarray(r.offset - start, r.offset - start + r.length);
          }
        }),
      );
      i = j;
    }
    await Promise.all(spans);
    return out;
  }

  private async fetchSpan(start: number, end: number): Promise<Uint8Array> {
    if (end === start) return new Uint8Array(0);
    this.requests++;
    const res = await request(this.name, `bytes=${start}-${end - 1}`, this.opts);
    if (res.status !== 206) {
      await res.body?.cancel();
      throw new SlideError(this.name, `HTTP ${res.status} for bytes ${start}..${end}`);
    }
    const range = /^bytes (\d+)-(\d+)\//.exec(res.headers.get('content-range') ?? '');
    if (!range || Number(range[1]) !== start || Number(range[2]) !== end - 1) {
      await res.body?.cancel();
      throw new SlideError(
        this.name,
        `server answered bytes ${range?.[1]}-${range?.[2]} for ${start}-${end - 1}`,
      );
    }
    const body = await readCapped(res, end - start, this.name);
    this.bytesFetched += body.length;
    return body;
  }

  async close(): Promise<void> {}
}

async function request(url: string, range: string, opts: FetchOptions): Promise<Response> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  try {
    const res = await fetch(url, {
      headers: { ...opts.headers, Range: range },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (res.status >= 400) {
      await res.body?.cancel();
      throw new SlideError(url, `HTTP ${res.status}`);
    }
    return res;
  } catch (e) {
    if (e instanceof SlideError) throw e;
    const why =
      (e as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e as Error).message;
    throw new SlideError(url, `cannot fetch (${why})`, { cause: e });
  }
}

/** The body, read as it streams and refused once it exceeds `expected` bytes (an endless body cannot fill memory). */
async function readCapped(res: Response, expected: number, name: string): Promise<Uint8Array> {
  const out = new Uint8Array(expected);
  let at = 0;
  const reader = res.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (at + value.length > expected) {
      await reader.cancel();
      throw new SlideError(name, `asked for ${expected} bytes, the server sent more`);
    }
    out.set(value, at);
    at += value.length;
  }
  if (at !== expected) throw new SlideError(name, `asked for ${expected} bytes, got ${at}`);
  return out;
}

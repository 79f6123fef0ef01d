/**
 * Where an OME-Zarr lives: a local folder (a small read-only file store, since zarrita only ships the fetch
 * store) or an HTTP(S) URL (zarrita's FetchStore: only the keys asked for are fetched). Metadata documents are
 * memoised so that our own metadata checks and zarrita's `open` share one request per document.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { AbsolutePath, AsyncReadable, RangeQuery } from 'zarrita';
import { confinedRealPath, unsafeKeyReason } from '../confine.ts';
import { type HttpLimits, httpGet } from '../http.ts';
import { MAX_CHUNK_BYTES } from './validate.ts';

const METADATA_KEY = /(^|\/)(\.zarray|\.zattrs|\.zgroup|\.zmetadata|zarr\.json)$/;

/**
 * Read-only local folder store: a missing file is a missing key (zarr's fill value for chunks). Reads stay inside
 * the folder: `root` is its real path, and a key that resolves elsewhere (a symlinked chunk pointing at
 * /etc/passwd) is refused unless `allowSymlinksOutside`.
 */
export class FolderStore implements AsyncReadable {
  #rootReal: Promise<string> | undefined;

  constructor(
    readonly root: string,
    readonly allowSymlinksOutside = false,
  ) {}

  async get(key: AbsolutePath): Promise<Uint8Array | undefined> {
    this.#rootReal ??= realpath(this.root);
    const path = await confinedRealPath(await this.#rootReal, key, this.allowSymlinksOutside);
    if (path === undefined) return undefined;
    try {
      return new Uint8Array(await readFile(path));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw new Error(`${key.slice(1)}: ${(err as Error).message}`);
    }
  }

  async getRange(key: AbsolutePath, range: RangeQuery): Promise<Uint8Array | undefined> {
    const whole = await this.get(key);
    if (!whole) return undefined;
    if ('suffixLength' in range) return whole.subarray(Math.max(0, whole.length - range.suffixLength));
    return whole.subarray(range.offset, range.offset + range.length);
  }
}

/** Largest metadata document fetched (real ones are a few KiB; consolidated metadata a few MiB). */
const MAX_METADATA_BYTES = 16 * 1024 * 1024;
/** Largest chunk body: the decoded-chunk budget plus room for a codec's worst-case expansion. */
const MAX_CHUNK_BODY_BYTES = MAX_CHUNK_BYTES + 1024 * 1024;

/**
 * Read-only HTTP(S) store with the slide readers' limits (timeouts, redirects, body caps, bounded inflation):
 * zarrita's FetchStore has none, so a server that never answers or sends an endless body would hang or fill memory.
 */
export class HttpStore implements AsyncReadable {
  readonly #base: URL;
  /** Largest body per array folder (key prefix), longest prefix first: a chunk's declared size plus codec room. */
  readonly #caps: { prefix: string; bytes: number }[] = [];

  /** Caps the body of every chunk key under `prefix` at `bytes`. */
  limitChunks(prefix: string, bytes: number): void {
    this.#caps.push({ prefix, bytes });
    this.#caps.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  constructor(
    readonly url: string,
    readonly limits: HttpLimits = {},
  ) {
    this.#base = new URL(url);
    if (!this.#base.pathname.endsWith('/')) this.#base.pathname += '/';
  }

  #resolve(key: AbsolutePath): string {
    const resolved = new URL(key.slice(1), this.#base);
    resolved.search = this.#base.search; // presigned URLs carry their signature in the query
    return resolved.href;
  }

  async get(key: AbsolutePath): Promise<Uint8Array | undefined> {
    const cap = METADATA_KEY.test(key)
      ? MAX_METADATA_BYTES
      : (this.#caps.find((c) => key.startsWith(c.prefix))?.bytes ?? MAX_CHUNK_BODY_BYTES);
    const res = await httpGet(this.url, this.#resolve(key), {}, cap, this.limits);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`HTTP ${res.status} ${res.statusText}`.trim());
    return res.body;
  }

  async getRange(key: AbsolutePath, range: RangeQuery): Promise<Uint8Array | undefined> {
    if ('suffixLength' in range) {
      const res = await httpGet(
        this.url,
        this.#resolve(key),
        { Range: `bytes=-${range.suffixLength}` },
        range.suffixLength,
        this.limits,
      );
      if (res.status === 404) return undefined;
      if (res.status !== 206)
        throw new Error(`HTTP ${res.status} ${res.statusText} for a suffix range`.trim());
      return res.body;
    }
    const { offset, length } = range;
    const res = await httpGet(
      this.url,
      this.#resolve(key),
      { Range: `bytes=${offset}-${offset + length - 1}` },
      length,
      this.limits,
    );
    if (res.status === 404) return undefined;
    if (res.status !== 206)
      throw new Error(
        `HTTP ${res.status} ${res.statusText} for bytes ${offset}-${offset + length - 1}`.trim(),
      );
    const answered = /^bytes (\d+)-(\d+)\//.exec(String(res.headers['content-range'] ?? ''));
    if (!answered || Number(answered[1]) !== offset || Number(answered[2]) !== offset + length - 1)
      throw new Error(
        `${key.slice(1)}: server answered bytes ${offset}-${offset + length - 1} with another range`,
      );
    if (res.body.length !== length)
      throw new Error(`${key.slice(1)}: server sent ${res.body.length} bytes for a ${length}-byte range`);
    return res.body;
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Wraps a store: metadata documents fetched once; errors name the key and the source. */
export class MemoStore implements AsyncReadable {
  readonly #inner: AsyncReadable;
  readonly #source: string;
  readonly #metadata = new Map<string, Promise<Uint8Array | undefined>>();

  constructor(inner: AsyncReadable, source: string) {
    this.#inner = inner;
    this.#source = source;
  }

  /**
   * Registers a check of the raw bytes of every chunk key under `prefix` (an array's folder, e.g. '/0/'):
   * codec frames that state their own sizes (Blosc) are checked against them before anything decodes.
   */
  checkChunks(prefix: string, check: (key: string, bytes: Uint8Array) => void): void {
    this.#checks.push({ prefix, check });
    this.#checks.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  readonly #checks: { prefix: string; check: (key: string, bytes: Uint8Array) => void }[] = [];

  /** Caps chunk bodies under `prefix` at `bytes` where the store fetches over HTTP (a no-op for folders). */
  limitChunks(prefix: string, bytes: number): void {
    if (this.#inner instanceof HttpStore) this.#inner.limitChunks(prefix, bytes);
  }

  get(key: AbsolutePath): Promise<Uint8Array | undefined> {
    const bad = unsafeKeyReason(key);
    if (bad) return Promise.reject(new Error(`${this.#source}: store key "${key}" ${bad}`));
    if (!METADATA_KEY.test(key)) {
      const check = this.#checks.find((c) => key.startsWith(c.prefix));
      if (!check) return this.#fetch(key);
      return this.#fetch(key).then((bytes) => {
        if (bytes) check.check(key.slice(1), bytes);
        return bytes;
      });
    }
    let doc = this.#metadata.get(key);
    if (!doc) {
      doc = this.#fetch(key);
      this.#metadata.set(key, doc);
    }
    return doc;
  }

  async #fetch(key: AbsolutePath): Promise<Uint8Array | undefined> {
    try {
      return await this.#inner.get(key);
    } catch (err) {
      throw new Error(`${this.#source}: reading ${key.slice(1)} failed: ${(err as Error).message}`);
    }
  }

  /** A JSON document of the store, or undefined when the key is absent. */
  async json(key: string): Promise<Record<string, unknown> | undefined> {
    const bytes = await this.get(`/${key.replace(/^\/+/, '')}` as AbsolutePath);
    if (!bytes) return undefined;
    try {
      const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        throw new Error('not a JSON object');
      return value as Record<string, unknown>;
    } catch (err) {
      throw new Error(`${this.#source}: ${key} is not valid JSON metadata: ${(err as Error).message}`);
    }
  }
}

export function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

export interface StoreOptions {
  /** Follow symlinks that lead out of a local store's folder (only for trusted local data; default false). */
  allowSymlinksOutside?: boolean;
  /** Timeouts and redirect limit for an http(s) store. */
  http?: HttpLimits;
}

/** The store behind a folder path, a file:// URL or an http(s) URL. */
export async function openStore(source: string, opts: StoreOptions = {}): Promise<MemoStore> {
  if (isUrl(source)) return new MemoStore(new HttpStore(source, opts.http), source);
  const folder = source.startsWith('file://') ? fileURLToPath(source) : source;
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(folder);
  } catch {
    throw new Error(`${source}: no such OME-Zarr folder`);
  }
  if (!info.isDirectory()) throw new Error(`${source}: not a folder (an OME-Zarr is a folder of chunks)`);
  return new MemoStore(new FolderStore(folder, opts.allowSymlinksOutside ?? false), source);
}

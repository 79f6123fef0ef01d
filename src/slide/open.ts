/** `openSlide`: picks the reader for a path or URL (OME-Zarr, TIFF family, PNG/JPEG) and wraps it in a PyramidSlide. */
import { stat } from 'node:fs/promises';
import { type ByteSource, type HttpOptions, isUrl, openByteSource } from './bytesource.ts';
import { BlockCache, sharedBlockCache } from './cache.ts';
import { createDecoder } from './decoder.ts';
import { asSlideError, SlideError } from './errors.ts';
import { openFlatImage } from './image.ts';
import { PyramidSlide } from './pyramid.ts';
import { isTiffMagic } from './tiff/ifd.ts';
import { openTiffSource } from './tiff/open.ts';
import type { PyramidSource, Slide } from './types.ts';

export interface OpenSlideOptions {
  /** Decode threads: 0 (default) decodes in this thread; n uses a pool of n workers; 'auto' = cores - 1. */
  workers?: number | 'auto';
  /** Decoded-block cache budget in bytes for this slide; default: the process-wide 256 MiB cache. */
  cacheBytes?: number;
  /** HTTP(S) options: timeout, range coalescing. */
  http?: HttpOptions;
  /**
   * OME-Zarr folders: follow symlinks that lead out of the store's folder. Off by default, so that a store
   * from outside (an upload, a shared drive) cannot read other local files; turn on for trusted local data.
   */
  allowSymlinksOutside?: boolean;
}

const MAX_FLAT_IMAGE_BYTES = 512 * 1024 * 1024;

/**
 * One byte-stream format: recognised by the file's first bytes, opened into a pyramid. Tried in table order (as
 * OpenSlide's format table): the first whose `detect` says yes opens the file. OME-Zarr is a folder, not a byte
 * stream, and is recognised before any of these.
 */
interface ByteFormat {
  name: string;
  detect(head: Uint8Array): boolean;
  open(bytes: ByteSource, opts: OpenSlideOptions): Promise<PyramidSlide>;
}

const BYTE_FORMATS: ByteFormat[] = [
  {
    name: 'TIFF family (Aperio SVS, OME-TIFF, pyramidal TIFF/BigTIFF)',
    detect: isTiffMagic,
    async open(bytes, opts) {
      const cache = opts.cacheBytes !== undefined ? new BlockCache(opts.cacheBytes) : sharedBlockCache;
      const decoder = createDecoder(opts.workers ?? 0);
      try {
        const tiff = await openTiffSource(bytes, cache, decoder);
        return new PyramidSlide(tiff, () => decoder.close());
      } catch (err) {
        await decoder.close();
        throw err;
      }
    },
  },
  {
    name: 'PNG or JPEG image',
    detect: (head) => isPng(head) || isJpeg(head),
    async open(bytes) {
      if (bytes.size > MAX_FLAT_IMAGE_BYTES)
        throw new SlideError(bytes.name, `image file of ${bytes.size} bytes is too large`);
      const all = await bytes.read(0, bytes.size);
      await bytes.close();
      return new PyramidSlide(await openFlatImage(bytes.name, all));
    },
  },
];

export async function openSlide(source: string, opts: OpenSlideOptions = {}): Promise<Slide> {
  if (await isZarr(source)) return new PyramidSlide(await openZarr(source, opts));
  let bytes: ByteSource | undefined;
  try {
    bytes = await openByteSource(source, opts.http);
    if (bytes.size === 0) throw new SlideError(source, 'empty file');
    const head = await bytes.read(0, Math.min(16, bytes.size));
    const format = BYTE_FORMATS.find((f) => f.detect(head));
    if (!format)
      throw new SlideError(source, 'unrecognised slide format (not TIFF/SVS, OME-Zarr, PNG or JPEG)');
    return await format.open(bytes, opts);
  } catch (err) {
    await bytes?.close().catch(() => {});
    throw asSlideError(source, err);
  }
}

async function isZarr(source: string): Promise<boolean> {
  if (/\.zarr\/?$/i.test(source.split(/[?#]/)[0])) return true;
  if (isUrl(source)) return false;
  try {
    return (await stat(source)).isDirectory();
  } catch {
    return false;
  }
}

async function openZarr(source: string, opts: OpenSlideOptions): Promise<PyramidSource> {
  // Imported lazily: the OME-Zarr reader lives in ./zarr and loads zarrita only when needed. A string literal, so
  // the build rewrites it to the compiled module.
  let mod: { openOmeZarr?: (s: string, o: OmeZarrOpenOptions) => Promise<PyramidSource> };
  try {
    mod = await import('./zarr/index.ts');
  } catch (err) {
    throw new SlideError(
      source,
      `OME-Zarr support not available (${err instanceof Error ? err.message : err})`,
    );
  }
  if (typeof mod.openOmeZarr !== 'function') throw new SlideError(source, 'OME-Zarr support not available');
  try {
    return await mod.openOmeZarr(source, {
      allowSymlinksOutside: opts.allowSymlinksOutside,
      http: opts.http,
    });
  } catch (err) {
    throw asSlideError(source, err);
  }
}

/** What openSlide passes on to the OME-Zarr reader (kept structural: the reader is imported lazily). */
interface OmeZarrOpenOptions {
  allowSymlinksOutside?: boolean;
  http?: HttpOptions;
}

function isPng(h: Uint8Array): boolean {
  return h[0] === 0x89 && h[1] === 0x50 && h[2] === 0x4e && h[3] === 0x47;
}

function isJpeg(h: Uint8Array): boolean {
  return h[0] === 0xff && h[1] === 0xd8 && h[2] === 0xff;
}

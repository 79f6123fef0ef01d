/**
 * `openSlideUrl` for browsers: a TIFF-family slide (Aperio SVS, pyramidal TIFF, OME-TIFF) over HTTP range requests,
 * with the same reader, level logic and `readRegion` semantics as Node's `openSlide` (OpenSlide's `read_region`),
 * decoding in the browser. OME-Zarr, flat images and local files are Node's.
 */
import { BlockCache } from '../cache.ts';
import { asSlideError, SlideError } from '../errors.ts';
import { PyramidSlide } from '../pyramid.ts';
import { isTiffMagic } from '../tiff/ifd.ts';
import { openTiffSource } from '../tiff/open.ts';
import type { Slide } from '../types.ts';
import { browserDecoder } from './decode.ts';
import { FetchByteSource, type FetchOptions } from './fetch-source.ts';

export interface OpenSlideUrlOptions extends FetchOptions {
  /** Decoded-block cache for this slide, in bytes (default 64 MiB). */
  cacheBytes?: number;
}

export async function openSlideUrl(url: string, opts: OpenSlideUrlOptions = {}): Promise<Slide> {
  let bytes: FetchByteSource | undefined;
  try {
    bytes = await FetchByteSource.open(url, opts);
    if (bytes.size === 0) throw new SlideError(url, 'empty file');
    const head = await bytes.read(0, Math.min(16, bytes.size));
    if (!isTiffMagic(head)) {
      throw new SlideError(
        url,
        'not a TIFF-family slide (the browser build reads SVS, pyramidal TIFF and OME-TIFF)',
      );
    }
    const tiff = await openTiffSource(
      bytes,
      new BlockCache(opts.cacheBytes ?? 64 * 1024 * 1024),
      browserDecoder,
    );
    return new PyramidSlide(tiff);
  } catch (err) {
    await bytes?.close();
    throw asSlideError(url, err);
  }
}

/**
 * Decodes one TIFF block (tile or strip) to RGBA in Node: the container logic of `block.ts` with Node's codecs
 * (libturbojpeg for JPEG, sharp/libvips where it is absent or declines a stream; zlib; OpenJPEG WASM for JPEG 2000). Pure function of serialisable inputs, so it runs the
 * same in the main thread and in pool workers.
 */
import { inflateSync } from 'node:zlib';
import { loadSharp } from '../../core/sharp.ts';
import { type BlockJob, type CodecKit, decodeBlockWith } from './block.ts';
import { decodeJpeg2000 } from './jp2k.ts';
import { decodeJpegTurbo } from './jpeg-turbo.ts';

export {
  type BlockFormat,
  type BlockJob,
  j2kCodestreamSize,
  jpegFrameSize,
  MAX_BLOCK_BYTES,
  unsupportedReason,
} from './block.ts';

export const nodeCodecs: CodecKit = {
  async inflate(data, maxBytes) {
    try {
      return new Uint8Array(inflateSync(data, { maxOutputLength: maxBytes }));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE')
        throw new Error(`deflate data expands beyond the ${maxBytes} bytes the block holds`);
      throw new Error(`corrupt deflate data (${(err as Error).message})`);
    }
  },
  async decodeJpegTop(stream, declared) {
    // SLIDESEG_JPEG_TOP=0 always decodes whole blocks (for A/B benchmarks: bench/slide-read.ts).
    if (process.env.SLIDESEG_JPEG_TOP === '0') return null;
    try {
      return await decodeJpegTurbo(stream, declared, { top: true });
    } catch {
      return null; // the whole block is decoded instead, and its errors reported
    }
  },
  async decodeJpeg(stream, declared) {
    try {
      const decoded = await decodeJpegTurbo(stream, declared);
      if (decoded) return decoded;
    } catch {
      // libturbojpeg rejects what libvips may still read (CMYK, a recoverable corruption
      // warning): sharp decides, and its message is the one reported.
    }
    const sharp = await loadSharp();
    const { data, info } = await sharp(stream, {
      failOn: 'error',
      limitInputPixels: declared.width * declared.height,
      sequentialRead: true,
    })
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    return {
      rgba: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
    };
  },
  decodeJpeg2000,
};

export function decodeBlock(job: BlockJob): Promise<Uint8Array> {
  return decodeBlockWith(job, nodeCodecs);
}

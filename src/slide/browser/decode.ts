/**
 * Block decoding in a browser: the same container logic as Node (`codecs/block.ts`: JPEGTables, RGB/YCbCr JPEG,
 * LZW, PackBits, predictors, sample layouts, and the checks that declared and decoded sizes are the block's), with
 * the browser's codecs: JPEG through `createImageBitmap` (libjpeg-turbo in Chromium), deflate through
 * `DecompressionStream`. JPEG 2000 is refused with a one-line reason.
 */
import { type CodecKit, decodeBlockWith } from '../codecs/block.ts';
import type { BlockDecoder } from '../decoder.ts';

// The two browser APIs used here, typed locally: the project compiles against Node's types, not the DOM's.
declare const createImageBitmap: (
  image: Blob,
  options?: { colorSpaceConversion?: 'none' | 'default'; premultiplyAlpha?: 'none' | 'default' },
) => Promise<{ width: number; height: number; close(): void }>;
declare const OffscreenCanvas: new (
  width: number,
  height: number,
) => {
  getContext(
    kind: '2d',
    options?: { willReadFrequently?: boolean },
  ): {
    drawImage(image: unknown, x: number, y: number): void;
    getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
  } | null;
};

export const browserCodecs: CodecKit = {
  async inflate(data, maxBytes) {
    const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream('deflate'));
    const reader = stream.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.length;
        // Stop reading a bomb early instead of inflating it whole.
        if (total > maxBytes)
          throw new Error(`deflate data expands beyond the ${maxBytes} bytes the block holds`);
        chunks.push(value);
      }
    } catch (err) {
      await reader.cancel().catch(() => {});
      if ((err as Error).message.startsWith('deflate data expands')) throw err;
      throw new Error(`corrupt deflate data (${(err as Error).message})`);
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  },
  async decodeJpeg(stream) {
    const bitmap = await createImageBitmap(new Blob([stream], { type: 'image/jpeg' }), {
      colorSpaceConversion: 'none',
      premultiplyAlpha: 'none',
    });
    const { width, height } = bitmap;
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('no 2D canvas context to decode JPEG into');
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    const { data } = ctx.getImageData(0, 0, width, height);
    return { rgba: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
  },
};

export const browserDecoder: BlockDecoder = {
  decode: (job) => decodeBlockWith(job, browserCodecs),
  async close() {},
};

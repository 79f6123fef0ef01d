/** JPEG 2000 codestream decoding with OpenJPEG compiled to WebAssembly (@cornerstonejs/codec-openjpeg). */
import { createRequire } from 'node:module';

interface J2KDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): {
    width: number;
    height: number;
    bitsPerSample: number;
    componentCount: number;
    isSigned: boolean;
  };
}
interface OpenJpegModule {
  J2KDecoder: new () => J2KDecoder;
}

let modulePromise: Promise<OpenJpegModule> | undefined;

function loadOpenJpeg(): Promise<OpenJpegModule> {
  if (!modulePromise) {
    const require = createRequire(import.meta.url);
    const factory = require('@cornerstonejs/codec-openjpeg/decodewasmjs') as (
      opts: object,
    ) => Promise<OpenJpegModule>;
    // OpenJPEG logs every tile header at INFO level; keep stdout/stderr clean.
    modulePromise = factory({ print: () => {}, printErr: () => {} });
  }
  return modulePromise;
}

export interface J2kImage {
  /** Interleaved samples, 8-bit. */
  data: Uint8Array;
  width: number;
  height: number;
  components: number;
}

let decoder: J2KDecoder | undefined;

export async function decodeJpeg2000(codestream: Uint8Array): Promise<J2kImage> {
  const mod = await loadOpenJpeg();
  decoder ??= new mod.J2KDecoder();
  decoder.getEncodedBuffer(codestream.length).set(codestream);
  decoder.decode();
  const info = decoder.getFrameInfo();
  if (info.bitsPerSample > 8)
    throw new Error(`JPEG 2000 with ${info.bitsPerSample}-bit samples is not supported`);
  // Copy out: the WASM heap buffer is reused by the next decode.
  const data = new Uint8Array(decoder.getDecodedBuffer());
  return { data, width: info.width, height: info.height, components: info.componentCount };
}

/**
 * Decodes one TIFF block (tile or strip) to RGBA: the container logic (decompression dispatch, predictors, sample
 * layouts, JPEGTables, the checks that a stream's declared and decoded sizes are the block's) with no platform
 * dependency. The codecs that need one come in a `CodecKit`: Node's (sharp, zlib, OpenJPEG WASM) in `decode.ts`,
 * the browser's (createImageBitmap, DecompressionStream) in `slide/browser/decode.ts`.
 */
import { COMPRESSION_NAMES, Compression, Photometric } from '../tiff/tags.ts';
import { lzwDecode } from './lzw.ts';

/** A decoded JPEG 2000 codestream: interleaved components. */
export interface J2kPixels {
  width: number;
  height: number;
  components: number;
  data: Uint8Array;
}

/** The platform's codecs. */
export interface CodecKit {
  /** zlib (TIFF deflate) data to bytes; an error when it would expand beyond `maxBytes`. */
  inflate(data: Uint8Array, maxBytes: number): Promise<Uint8Array>;
  /** A complete JPEG stream, already checked to declare `declared` pixels, to RGBA. */
  decodeJpeg(
    stream: Uint8Array,
    declared: { width: number; height: number },
  ): Promise<{ rgba: Uint8Array; width: number; height: number }>;
  /**
   * The top `declared.height` rows of a JPEG stream whose frame header was lowered to that height (see
   * `decodeJpegBlock`): the decoder stops there and skips the rest of the scan. Null where the platform cannot (the
   * caller then decodes the whole block); absent where it never can.
   */
  decodeJpegTop?(
    stream: Uint8Array,
    declared: { width: number; height: number },
  ): Promise<{ rgba: Uint8Array; width: number; height: number } | null>;
  /** A JPEG 2000 codestream; absent where the platform has no decoder. */
  decodeJpeg2000?(codestream: Uint8Array): Promise<J2kPixels>;
}

export interface BlockFormat {
  compression: number;
  photometric: number;
  samplesPerPixel: number;
  bitsPerSample: number;
  /** 1 uint, 2 int, 3 float. */
  sampleFormat: number;
  predictor: number;
  /** 1 chunky, 2 separate planes (one byte array per sample). */
  planar: number;
  littleEndian: boolean;
  jpegTables?: Uint8Array;
  /** Largest sample value, for scaling 16-bit data to 8 bits. */
  maxSampleValue?: number;
  colorMap?: number[];
}

export interface BlockJob {
  format: BlockFormat;
  /** Encoded bytes: one array, or one per plane when planar = 2. */
  data: Uint8Array[];
  /** Decoded block size (full tile size, or the strip's rows). */
  width: number;
  height: number;
  /**
   * Rows a JPEG/J2K stream of this block may declare (RowsPerStrip: a last strip may be coded at full strip height
   * and is then cut to `height`); default `height`.
   */
  maxHeight?: number;
  /**
   * Only the block's first `rowsNeeded` rows are wanted: a decoder may then return fewer rows than `height` (never
   * fewer than `rowsNeeded`; the result's length says how many) when that is much cheaper. Default: all rows.
   */
  rowsNeeded?: number;
}

/** Largest block we agree to decode (RGBA bytes); guards against crafted headers. */
export const MAX_BLOCK_BYTES = 256 * 1024 * 1024;

export function unsupportedReason(f: BlockFormat): string | null {
  const known = [
    Compression.None,
    Compression.LZW,
    Compression.JPEG,
    Compression.AdobeDeflate,
    Compression.Deflate,
    Compression.PackBits,
    Compression.ApertureJP2kYCbCr,
    Compression.ApertureJP2kRGB,
  ] as number[];
  if (!known.includes(f.compression)) {
    const name = COMPRESSION_NAMES[f.compression] ?? 'unknown';
    return `unsupported compression ${f.compression} (${name})`;
  }
  if (f.bitsPerSample !== 8 && f.bitsPerSample !== 16) return `unsupported ${f.bitsPerSample}-bit samples`;
  if (f.sampleFormat === 3) return 'unsupported floating-point samples';
  if (f.predictor !== 1 && f.predictor !== 2) return `unsupported predictor ${f.predictor}`;
  if (![0, 1, 2, 3, 6].includes(f.photometric))
    return `unsupported photometric interpretation ${f.photometric}`;
  if (f.photometric === Photometric.YCbCr && f.compression !== Compression.JPEG) {
    return 'unsupported uncompressed YCbCr data';
  }
  return null;
}

export async function decodeBlockWith(job: BlockJob, kit: CodecKit): Promise<Uint8Array> {
  const { format: f, width, height } = job;
  if (width * height * 4 > MAX_BLOCK_BYTES)
    throw new Error(`block of ${width}x${height} pixels is too large`);
  if (f.compression === Compression.JPEG) return decodeJpegBlock(job, kit);
  if (f.compression === Compression.ApertureJP2kRGB || f.compression === Compression.ApertureJP2kYCbCr) {
    return decodeJp2kBlock(job, kit);
  }
  const bytesPerSample = f.bitsPerSample / 8;
  const planeSpp = f.planar === 2 ? 1 : f.samplesPerPixel;
  const planeBytes = width * height * planeSpp * bytesPerSample;
  const planes = await Promise.all(
    job.data.map(async (d) => {
      const raw = await decompress(f.compression, d, planeBytes, kit);
      if (f.predictor === 2)
        undoHorizontalPredictor(raw, width, height, planeSpp, bytesPerSample, f.littleEndian);
      return raw;
    }),
  );
  return samplesToRgba(f, planes, width, height);
}

async function decompress(
  compression: number,
  data: Uint8Array,
  expected: number,
  kit: CodecKit,
): Promise<Uint8Array> {
  let out: Uint8Array;
  switch (compression) {
    case Compression.None:
      out = data;
      break;
    case Compression.LZW:
      return lzwDecode(data, expected);
    case Compression.AdobeDeflate:
    case Compression.Deflate:
      out = await kit.inflate(data, Math.max(expected, 1));
      break;
    case Compression.PackBits:
      return packBitsDecode(data, expected);
    default:
      throw new Error(`unsupported compression ${compression}`);
  }
  if (out.length < expected) {
    // A short block would otherwise be zero-padded into plausible-looking black pixels.
    throw new Error(`block holds ${out.length} bytes of samples where its size needs ${expected}`);
  }
  return out.length === expected ? out : out.subarray(0, expected);
}

function packBitsDecode(data: Uint8Array, expected: number): Uint8Array {
  const out = new Uint8Array(expected);
  let i = 0;
  let o = 0;
  while (i < data.length && o < expected) {
    const n = (data[i++] << 24) >> 24;
    if (n >= 0) {
      const len = Math.min(n + 1, expected - o, data.length - i);
      out.set(data.subarray(i, i + len), o);
      i += n + 1;
      o += len;
    } else if (n !== -128) {
      const len = Math.min(1 - n, expected - o);
      out.fill(data[i++], o, o + len);
      o += len;
    }
  }
  if (o < expected) throw new Error(`PackBits data ends after ${o} of ${expected} bytes`);
  return out;
}

function undoHorizontalPredictor(
  raw: Uint8Array,
  width: number,
  height: number,
  spp: number,
  bytesPerSample: number,
  little: boolean,
): void {
  const rowSamples = width * spp;
  if (bytesPerSample === 1) {
    for (let y = 0; y < height; y++) {
      const row = y * rowSamples;
      for (let i = spp; i < rowSamples; i++) raw[row + i] = (raw[row + i] + raw[row + i - spp]) & 0xff;
    }
    return;
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  for (let y = 0; y < height; y++) {
    const row = y * rowSamples;
    for (let i = spp; i < rowSamples; i++) {
      const at = (row + i) * 2;
      const v = (view.getUint16(at, little) + view.getUint16(at - spp * 2, little)) & 0xffff;
      view.setUint16(at, v, little);
    }
  }
}

/** Converts decoded samples (8 or 16 bit, grey/RGB/palette, optional extra samples) to opaque RGBA. */
function samplesToRgba(f: BlockFormat, planes: Uint8Array[], width: number, height: number): Uint8Array {
  const n = width * height;
  const spp = f.samplesPerPixel;
  const out = new Uint8Array(n * 4);
  const sample = sampleReader(f);
  // Index of sample s of pixel p in plane array planeOf(s).
  const planeOf = (s: number) => (f.planar === 2 ? planes[s] : planes[0]);
  const indexOf = (p: number, s: number) => (f.planar === 2 ? p : p * spp + s);
  if (f.photometric === Photometric.RGB && spp >= 3) {
    const r = planeOf(0);
    const g = planeOf(1);
    const b = planeOf(2);
    if (f.bitsPerSample === 8 && f.planar !== 2) {
      for (let p = 0, i = 0; p < n; p++, i += spp) {
        out[p * 4] = r[i];
        out[p * 4 + 1] = r[i + 1];
        out[p * 4 + 2] = r[i + 2];
        out[p * 4 + 3] = 255;
      }
      return out;
    }
    for (let p = 0; p < n; p++) {
      out[p * 4] = sample(r, indexOf(p, 0));
      out[p * 4 + 1] = sample(g, indexOf(p, 1));
      out[p * 4 + 2] = sample(b, indexOf(p, 2));
      out[p * 4 + 3] = 255;
    }
    return out;
  }
  if (f.photometric === Photometric.Palette && f.colorMap) {
    const map = f.colorMap;
    const size = map.length / 3;
    const plane = planes[0];
    for (let p = 0; p < n; p++) {
      const idx =
        f.bitsPerSample === 8 ? plane[indexOf(p, 0)] : rawSample16(plane, indexOf(p, 0), f.littleEndian);
      out[p * 4] = map[idx] >> 8;
      out[p * 4 + 1] = map[size + idx] >> 8;
      out[p * 4 + 2] = map[2 * size + idx] >> 8;
      out[p * 4 + 3] = 255;
    }
    return out;
  }
  // Greyscale (first sample only; extra samples such as alpha are ignored: readers return opaque pixels).
  const plane = planes[0];
  const invert = f.photometric === Photometric.WhiteIsZero;
  for (let p = 0; p < n; p++) {
    let v = sample(plane, indexOf(p, 0));
    if (invert) v = 255 - v;
    out[p * 4] = v;
    out[p * 4 + 1] = v;
    out[p * 4 + 2] = v;
    out[p * 4 + 3] = 255;
  }
  return out;
}

function rawSample16(plane: Uint8Array, i: number, little: boolean): number {
  return little ? plane[i * 2] | (plane[i * 2 + 1] << 8) : (plane[i * 2] << 8) | plane[i * 2 + 1];
}

/** Reads sample i as an 8-bit display value: 16-bit data is scaled linearly from [0, max] to [0, 255]. */
function sampleReader(f: BlockFormat): (plane: Uint8Array, i: number) => number {
  if (f.bitsPerSample === 8) {
    if (f.sampleFormat === 2) return (plane, i) => (plane[i] ^ 0x80) & 0xff;
    return (plane, i) => plane[i];
  }
  const signed = f.sampleFormat === 2;
  const max = f.maxSampleValue && f.maxSampleValue > 0 && !signed ? f.maxSampleValue : 65535;
  const scale = 255 / max;
  return (plane, i) => {
    let v = rawSample16(plane, i, f.littleEndian);
    if (signed) v = (v ^ 0x8000) & 0xffff;
    const s = Math.round(v * scale);
    return Math.min(s, 255);
  };
}

/**
 * For Photometric RGB, libtiff (and so OpenSlide) decodes JPEG without colour conversion. libjpeg would
 * otherwise guess YCbCr for a 3-component stream without an Adobe marker, so an Adobe APP14 marker with
 * transform 0 (= RGB) goes right after SOI when neither the tables nor the tile have one.
 */
const ADOBE_RGB = Uint8Array.of(0xff, 0xee, 0, 14, 0x41, 0x64, 0x6f, 0x62, 0x65, 0, 100, 0, 0, 0, 0, 0);

function hasAdobeMarker(jpeg: Uint8Array | undefined): boolean {
  if (!jpeg) return false;
  for (let i = 2; i + 4 < jpeg.length; ) {
    if (jpeg[i] !== 0xff) return false;
    const marker = jpeg[i + 1];
    if (marker === 0xee) return true;
    if (marker === 0xda) return false; // start of scan: no more headers
    i += 2 + ((jpeg[i + 2] << 8) | jpeg[i + 3]);
  }
  return false;
}

/**
 * The complete stream of a TIFF JPEG block in one allocation: SOI, the Adobe RGB marker where the photometric needs
 * it, the shared JPEGTables' segments, then the tile's. `owned`: a new array (the caller may patch it), not the tile.
 */
export function assembleJpeg(
  tables: Uint8Array | undefined,
  tile: Uint8Array,
  rgb: boolean,
): { stream: Uint8Array; owned: boolean } {
  const useTables = tables !== undefined && tables.length >= 4;
  const adobe = rgb && !hasAdobeMarker(tables) && !hasAdobeMarker(tile);
  if (!useTables && !adobe) return { stream: tile, owned: false };
  const middle = useTables ? tables.subarray(2, tables.length - 2) : new Uint8Array(0); // no SOI, no EOI
  const out = new Uint8Array(2 + (adobe ? ADOBE_RGB.length : 0) + middle.length + tile.length - 2);
  out.set(tile.subarray(0, 2), 0); // SOI
  let at = 2;
  if (adobe) {
    out.set(ADOBE_RGB, at);
    at += ADOBE_RGB.length;
  }
  out.set(middle, at);
  out.set(tile.subarray(2), at + middle.length);
  return { stream: out, owned: true };
}

/** Width and height a JPEG stream's frame header (SOFn) declares, or null when it has none before the scan. */
export function jpegFrameSize(jpeg: Uint8Array): { width: number; height: number } | null {
  let i = 2;
  while (i + 3 < jpeg.length) {
    if (jpeg[i] !== 0xff) return null;
    const marker = jpeg[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2; // markers without a length (a second SOI appears when tables were spliced in)
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return null;
    const length = (jpeg[i + 2] << 8) | jpeg[i + 3];
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) {
      if (i + 9 > jpeg.length) return null;
      return { height: (jpeg[i + 5] << 8) | jpeg[i + 6], width: (jpeg[i + 7] << 8) | jpeg[i + 8] };
    }
    i += 2 + length;
  }
  return null;
}

/**
 * Width and height of a JPEG 2000 codestream from its SIZ segment (image area minus offset), or null when the
 * stream does not start with SOC + SIZ. Throws when SIZ declares what no slide tile has (more than 4 components,
 * samples over 16 bits, zero subsampling): OpenJPEG would otherwise size its buffers from those numbers.
 */
export function j2kCodestreamSize(cs: Uint8Array): { width: number; height: number } | null {
  if (cs.length < 42 || cs[0] !== 0xff || cs[1] !== 0x4f || cs[2] !== 0xff || cs[3] !== 0x51) return null;
  const v = new DataView(cs.buffer, cs.byteOffset, cs.byteLength);
  const width = v.getUint32(8) - v.getUint32(16);
  const height = v.getUint32(12) - v.getUint32(20);
  const components = v.getUint16(40);
  if (components < 1 || components > 4 || cs.length < 42 + 3 * components)
    throw new Error(`JPEG 2000 stream declares ${components} components`);
  for (let c = 0; c < components; c++) {
    const bits = (cs[42 + 3 * c] & 0x7f) + 1;
    if (bits > 16 || cs[43 + 3 * c] === 0 || cs[44 + 3 * c] === 0)
      throw new Error(
        `JPEG 2000 stream declares component ${c} with ${bits}-bit samples or zero subsampling`,
      );
  }
  return width > 0 && height > 0 ? { width, height } : null;
}

/**
 * The decode budget of a block: the size a codestream declares must be the block's size (a last strip may be
 * coded up to RowsPerStrip rows), checked before the decoder allocates anything for it.
 */
function checkDeclaredSize(
  kind: string,
  declared: { width: number; height: number } | null,
  job: BlockJob,
): void {
  if (!declared) throw new Error(`${kind} stream without a readable frame header`);
  const maxHeight = Math.max(job.height, job.maxHeight ?? job.height);
  if (declared.width !== job.width || declared.height < job.height || declared.height > maxHeight) {
    throw new Error(
      `${kind} stream declares ${declared.width}x${declared.height} pixels but the TIFF block is ${job.width}x${job.height}`,
    );
  }
}

/**
 * Rows below the last wanted one that a top-of-block JPEG decode also decodes and then drops: chroma upsampling
 * (4:2:0, fancy) reads one chroma row beyond each output row and replicates the last one at the frame's bottom, so
 * the rows near a lowered bottom differ from a whole decode; one 16-row MCU row of margin keeps every kept row exact.
 */
export const JPEG_TOP_MARGIN_ROWS = 16;
/** A top-of-block decode is used only where it decodes at most this share of the block's rows. */
const JPEG_TOP_MAX_SHARE = 5 / 8;

/**
 * Rows to decode for the top `rowsNeeded` rows of a block whose stream declares `frameRows`: whole MCU rows plus
 * the margin; null when that saves too little to be worth a partial block (which the cache may have to replace).
 */
export function jpegTopRows(rowsNeeded: number, frameRows: number): number | null {
  const rows = Math.ceil(rowsNeeded / 16) * 16 + JPEG_TOP_MARGIN_ROWS;
  return rows <= frameRows * JPEG_TOP_MAX_SHARE ? rows : null;
}

/**
 * Where a JPEG stream's frame height is (SOF0/SOF1, baseline and extended sequential Huffman: what slide scanners
 * write, and where a scan is one pass from the top, so stopping early skips the remaining rows); -1 for any other
 * frame or a malformed header. Baseline decoders decode as many rows as it says and read the rest of the scan as
 * data to skip (libjpeg warns "extraneous bytes before marker").
 */
function frameHeightOffset(jpeg: Uint8Array): number {
  let i = 2;
  while (i + 8 < jpeg.length) {
    if (jpeg[i] !== 0xff) return -1;
    const marker = jpeg[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return -1;
    if (marker === 0xc0 || marker === 0xc1) return i + 5;
    if (marker >= 0xc2 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return -1;
    i += 2 + ((jpeg[i + 2] << 8) | jpeg[i + 3]);
  }
  return -1;
}

/** A copy of a JPEG stream whose frame header declares `rows` rows, or null (see `frameHeightOffset`). */
export function withFrameHeight(jpeg: Uint8Array, rows: number): Uint8Array | null {
  const at = frameHeightOffset(jpeg);
  if (at < 0) return null;
  const out = jpeg.slice();
  writeFrameHeight(out, at, rows);
  return out;
}

function writeFrameHeight(jpeg: Uint8Array, at: number, rows: number): void {
  jpeg[at] = rows >> 8;
  jpeg[at + 1] = rows & 0xff;
}

/**
 * Whether the stream ends with EOI (after any zero padding). A top-rows decode skips the unread scan with a warning
 * that a truncated stream's warning cannot be told from where the message is lost (libjpeg-turbo's pool threads), and
 * a truncated stream would decode its missing rows as grey: such blocks are decoded whole, where truncation is an
 * error.
 */
function endsWithEoi(jpeg: Uint8Array): boolean {
  let end = jpeg.length;
  while (end > 2 && jpeg[end - 1] === 0) end--;
  return end >= 4 && jpeg[end - 2] === 0xff && jpeg[end - 1] === 0xd9;
}

async function decodeJpegBlock(job: BlockJob, kit: CodecKit): Promise<Uint8Array> {
  const f = job.format;
  const { stream, owned } = assembleJpeg(f.jpegTables, job.data[0], f.photometric === Photometric.RGB);
  const declared = jpegFrameSize(stream);
  checkDeclaredSize('JPEG', declared, job);
  const size = declared as { width: number; height: number };
  const topRows = job.rowsNeeded !== undefined ? jpegTopRows(job.rowsNeeded, size.height) : null;
  if (topRows !== null && kit.decodeJpegTop && endsWithEoi(stream)) {
    // The frame height is lowered in place when the stream is our own assembly (and restored if the top decode is
    // refused and the whole block decoded): no further copy of the block's bytes.
    const at = frameHeightOffset(stream);
    const lowered = at < 0 ? null : owned ? stream : stream.slice();
    if (lowered) {
      writeFrameHeight(lowered, at, topRows);
      const top = await kit.decodeJpegTop(lowered, { width: size.width, height: topRows });
      if (top && top.width === size.width && top.height === topRows) {
        const kept = Math.min(topRows - JPEG_TOP_MARGIN_ROWS, job.height);
        return top.rgba.subarray(0, kept * size.width * 4);
      }
      writeFrameHeight(lowered, at, size.height);
    }
  }
  const { rgba, width, height } = await kit.decodeJpeg(stream, size);
  return exactBlock(rgba, width, height, job, 'JPEG');
}

async function decodeJp2kBlock(job: BlockJob, kit: CodecKit): Promise<Uint8Array> {
  checkDeclaredSize('JPEG 2000', j2kCodestreamSize(job.data[0]), job);
  if (!kit.decodeJpeg2000) throw new Error('JPEG 2000 blocks cannot be decoded on this platform');
  const img = await kit.decodeJpeg2000(job.data[0]);
  const n = img.width * img.height;
  const rgba = new Uint8Array(n * 4);
  const c = img.components;
  const src = img.data;
  if (c >= 3 && job.format.compression === Compression.ApertureJP2kYCbCr) {
    for (let p = 0; p < n; p++) {
      const Y = src[p * c];
      const cb = src[p * c + 1] - 128;
      const cr = src[p * c + 2] - 128;
      // OpenSlide's table-driven conversion: each chroma term rounded on its own, then added to Y.
      rgba[p * 4] = clamp(Y + Math.round(1.402 * cr));
      rgba[p * 4 + 1] = clamp(Y + Math.round(-0.34414 * cb - 0.71414 * cr));
      rgba[p * 4 + 2] = clamp(Y + Math.round(1.772 * cb));
      rgba[p * 4 + 3] = 255;
    }
  } else {
    for (let p = 0; p < n; p++) {
      rgba[p * 4] = src[p * c];
      rgba[p * 4 + 1] = src[p * c + (c >= 3 ? 1 : 0)];
      rgba[p * 4 + 2] = src[p * c + (c >= 3 ? 2 : 0)];
      rgba[p * 4 + 3] = 255;
    }
  }
  return exactBlock(rgba, img.width, img.height, job, 'JPEG 2000');
}

function clamp(v: number): number {
  const r = Math.round(v);
  return r < 0 ? 0 : Math.min(r, 255);
}

/**
 * The decoded image as the block: it must have the block's width and at least its rows (a last strip coded at
 * full strip height is cut); anything else is corrupt data, never cropped or padded into pixels.
 */
function exactBlock(rgba: Uint8Array, w: number, h: number, job: BlockJob, kind: string): Uint8Array {
  if (w === job.width && h === job.height) return rgba;
  if (w !== job.width || h < job.height) {
    throw new Error(
      `${kind} data decodes to ${w}x${h} pixels but the TIFF block is ${job.width}x${job.height}`,
    );
  }
  return rgba.subarray(0, job.width * job.height * 4);
}

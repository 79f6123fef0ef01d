/** One TIFF image (IFD) as a grid of blocks: tiles, or strips treated as full-width tiles. */
import type { BlockFormat } from '../codecs/block.ts';
import { MAX_BLOCK_BYTES, unsupportedReason } from '../codecs/block.ts';
import { SlideError } from '../errors.ts';
import type { Ifd } from './ifd.ts';
import { Compression, Photometric, Tag } from './tags.ts';

/** Pixel dimensions we accept (OpenSlide and libtiff use 32-bit sizes). */
const MAX_DIMENSION = 2 ** 31 - 1;

export class TiffImage {
  readonly width: number;
  readonly height: number;
  readonly tiled: boolean;
  readonly blockWidth: number;
  readonly blockHeight: number;
  readonly blocksAcross: number;
  readonly blocksDown: number;
  readonly offsets: number[];
  readonly byteCounts: number[];
  readonly format: BlockFormat;
  /** Why blocks cannot be decoded (checked when pixels are read, so metadata stays available). */
  readonly unsupported: string | null;

  constructor(
    readonly source: string,
    readonly ifd: Ifd,
    littleEndian: boolean,
    fileSize: number,
  ) {
    const fail = (why: string): never => {
      throw new SlideError(source, `IFD at byte ${ifd.offset}: ${why}`);
    };
    this.width = ifd.width;
    this.height = ifd.height;
    if (!(this.width > 0 && this.height > 0)) fail(`invalid image size ${this.width}x${this.height}`);
    if (this.width > MAX_DIMENSION || this.height > MAX_DIMENSION)
      fail(`absurd image size ${this.width}x${this.height}`);
    this.tiled = ifd.tiled;
    if (this.tiled) {
      this.blockWidth = ifd.number(Tag.TileWidth, 0);
      this.blockHeight = ifd.number(Tag.TileLength, 0);
      this.offsets = ifd.numbers(Tag.TileOffsets) ?? [];
      this.byteCounts = ifd.numbers(Tag.TileByteCounts) ?? [];
    } else {
      this.blockWidth = this.width;
      this.blockHeight = Math.min(ifd.number(Tag.RowsPerStrip, this.height), this.height);
      this.offsets = ifd.numbers(Tag.StripOffsets) ?? fail('neither tiles nor strips (no StripOffsets)');
      this.byteCounts = ifd.numbers(Tag.StripByteCounts) ?? [];
    }
    if (!(this.blockWidth > 0 && this.blockHeight > 0))
      fail(`invalid tile size ${this.blockWidth}x${this.blockHeight}`);
    this.blocksAcross = Math.ceil(this.width / this.blockWidth);
    this.blocksDown = Math.ceil(this.height / this.blockHeight);
    const spp = ifd.number(Tag.SamplesPerPixel, 1);
    const planar = ifd.number(Tag.PlanarConfiguration, 1);
    const planes = planar === 2 ? spp : 1;
    const expected = this.blocksAcross * this.blocksDown * planes;
    if (this.offsets.length < expected) {
      fail(
        `${this.offsets.length} tile/strip offsets for ${expected} blocks of a ${this.width}x${this.height} image`,
      );
    }
    if (this.byteCounts.length < expected) {
      // Uncompressed files may omit StripByteCounts; derive them from the geometry.
      const compression = ifd.number(Tag.Compression, 1);
      if (compression !== Compression.None) fail('missing tile/strip byte counts');
    }
    const bits = ifd.numbers(Tag.BitsPerSample)?.[0] ?? 1;
    const compression = ifd.number(Tag.Compression, 1);
    const bytesPerSample = Math.ceil(bits / 8);
    if (this.byteCounts.length < expected) {
      const blockBytes = this.blockWidth * this.blockHeight * (planar === 2 ? 1 : spp) * bytesPerSample;
      this.byteCounts = new Array(expected).fill(blockBytes);
    }
    for (let i = 0; i < expected; i++) {
      const o = this.offsets[i];
      const n = this.byteCounts[i];
      if (n > 0 && (o < 0 || o + n > fileSize || !Number.isFinite(o + n))) {
        fail(`tile/strip ${i} at bytes ${o}..${o + n} lies beyond the end of the file (${fileSize} bytes)`);
      }
    }
    this.format = {
      compression,
      photometric: ifd.number(Tag.Photometric, spp >= 3 ? Photometric.RGB : Photometric.BlackIsZero),
      samplesPerPixel: spp,
      bitsPerSample: bits,
      sampleFormat: ifd.number(Tag.SampleFormat, 1),
      predictor: ifd.number(Tag.Predictor, 1),
      planar,
      littleEndian,
      jpegTables: ifd.bytes(Tag.JPEGTables),
      maxSampleValue: ifd.number(281 /* MaxSampleValue */),
      colorMap: ifd.numbers(Tag.ColorMap),
    };
    let why = unsupportedReason(this.format);
    if (!why && this.blockWidth * this.blockHeight * 4 > MAX_BLOCK_BYTES) {
      why = `tiles/strips of ${this.blockWidth}x${this.blockHeight} pixels are too large to decode`;
    }
    this.unsupported = why;
  }

  /** Rows actually stored in block row `row` (strips at the bottom may be short; tiles are always full). */
  blockRows(row: number): number {
    return this.tiled ? this.blockHeight : Math.min(this.blockHeight, this.height - row * this.blockHeight);
  }

  /** Byte ranges of block (col, row): one per plane. Zero-length means the block is absent. */
  blockRanges(col: number, row: number): { offset: number; length: number }[] {
    const index = row * this.blocksAcross + col;
    const perPlane = this.blocksAcross * this.blocksDown;
    const planes = this.format.planar === 2 ? this.format.samplesPerPixel : 1;
    const out = [];
    for (let p = 0; p < planes; p++) {
      const i = p * perPlane + index;
      out.push({ offset: this.offsets[i], length: this.byteCounts[i] });
    }
    return out;
  }
}

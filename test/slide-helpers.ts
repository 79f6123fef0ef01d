/** Shared helpers for the slide tests: reading golden PNGs and comparing RGBA images with a tolerance. */
import sharp from 'sharp';
import type { RGBAImage } from '../src/slide/index.ts';

export async function readPng(path: string): Promise<RGBAImage> {
  const { data, info } = await sharp(path).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

export interface Diff {
  /** Pixels compared (both opaque, or selected by `where`). */
  compared: number;
  /** Compared pixels with some channel off by more than the tolerance. */
  bad: number;
  maxDiff: number;
  /** Pixels whose alpha differs. */
  alphaMismatch: number;
}

/**
 * Compares RGB of pixels opaque in the reference (alpha must match exactly everywhere);
 * `where(x, y)` restricts the comparison to some pixels.
 */
export function compareRgba(
  actual: RGBAImage,
  expected: RGBAImage,
  tolerance = 2,
  where?: (x: number, y: number) => boolean,
): Diff {
  if (actual.width !== expected.width || actual.height !== expected.height) {
    throw new Error(`size ${actual.width}x${actual.height} != expected ${expected.width}x${expected.height}`);
  }
  const d: Diff = { compared: 0, bad: 0, maxDiff: 0, alphaMismatch: 0 };
  for (let y = 0; y < expected.height; y++) {
    for (let x = 0; x < expected.width; x++) {
      if (where && !where(x, y)) continue;
      const i = (y * expected.width + x) * 4;
      if (actual.data[i + 3] !== expected.data[i + 3]) d.alphaMismatch++;
      if (expected.data[i + 3] === 0) continue;
      d.compared++;
      let m = 0;
      for (let k = 0; k < 3; k++) m = Math.max(m, Math.abs(actual.data[i + k] - expected.data[i + k]));
      if (m > tolerance) d.bad++;
      d.maxDiff = Math.max(d.maxDiff, m);
    }
  }
  return d;
}

export type Entry = [tag: number, type: 3 | 4, values: number[]];

/** A little-endian classic TIFF with one IFD at byte 8 (plus `extra` bytes of pixel data after it). */
export function craftTiff(entries: Entry[], opts: { nextIfd?: number; extra?: number } = {}): Uint8Array {
  const sorted = [...entries].sort((a, b) => a[0] - b[0]);
  const ifdSize = 2 + sorted.length * 12 + 4;
  let outOfLine = 8 + ifdSize;
  const blobs: { at: number; type: number; values: number[] }[] = [];
  const buf = new Uint8Array(
    outOfLine +
      sorted.reduce(
        (n, [, t, v]) => n + (v.length * (t === 3 ? 2 : 4) > 4 ? v.length * (t === 3 ? 2 : 4) : 0),
        0,
      ) +
      (opts.extra ?? 0),
  );
  const dv = new DataView(buf.buffer);
  buf.set([0x49, 0x49, 42, 0]);
  dv.setUint32(4, 8, true);
  dv.setUint16(8, sorted.length, true);
  sorted.forEach(([tag, type, values], i) => {
    const p = 10 + i * 12;
    const size = type === 3 ? 2 : 4;
    dv.setUint16(p, tag, true);
    dv.setUint16(p + 2, type, true);
    dv.setUint32(p + 4, values.length, true);
    let at = p + 8;
    if (values.length * size > 4) {
      dv.setUint32(p + 8, outOfLine, true);
      at = outOfLine;
      outOfLine += values.length * size;
    }
    blobs.push({ at, type, values });
  });
  for (const { at, type, values } of blobs) {
    values.forEach((v, i) => {
      if (type === 3) dv.setUint16(at + i * 2, v, true);
      else dv.setUint32(at + i * 4, v, true);
    });
  }
  dv.setUint32(10 + sorted.length * 12, opts.nextIfd ?? 0, true);
  return buf;
}

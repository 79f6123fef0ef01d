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

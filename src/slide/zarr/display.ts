/**
 * How array values become display RGB (documented policy, chosen to be predictable rather than clever):
 *
 * Values → 0..255 per channel:
 * - uint8: as stored (omero windows are ignored: 8-bit slides are already display values).
 * - other dtypes: linear from `omero.channels[i].window` start..end when present; else
 *   uint16 / int8 / int16 over the whole dtype range; float32/64 and 32/64-bit integers over the
 *   channel's min..max in the SMALLEST level (one cheap read at open, the same mapping for every level so
 *   tiles of different levels match). Values are rounded and clamped; NaN shows as 0.
 *
 * Channels → RGB:
 * - 1 channel (or no channel axis): grey (R = G = B).
 * - 3 channels: R, G, B in order.
 * - other counts: when omero gives a colour for every channel, the active channels are blended additively
 *   with their colours (clamped at 255); otherwise the first three channels are R, G, B (a missing one is 0).
 */
import type { OmeroChannel } from './metadata.ts';

export type ZarrNumericType =
  | 'uint8'
  | 'int8'
  | 'uint16'
  | 'int16'
  | 'uint32'
  | 'int32'
  | 'uint64'
  | 'int64'
  | 'float32'
  | 'float64';

export const SUPPORTED_DTYPES: readonly string[] = [
  'uint8',
  'int8',
  'uint16',
  'int16',
  'uint32',
  'int32',
  'uint64',
  'int64',
  'float32',
  'float64',
];

/** The dtypes whose display window is the whole dtype range unless omero says otherwise. */
const DTYPE_RANGE: Partial<Record<ZarrNumericType, [number, number]>> = {
  uint8: [0, 255],
  int8: [-128, 127],
  uint16: [0, 65535],
  int16: [-32768, 32767],
};

export interface ChannelDisplay {
  /** Index along the channel axis. */
  channel: number;
  /** Display colour, 0..255 each. */
  color: [number, number, number];
  /** Value window mapped to 0..255. */
  start: number;
  end: number;
}

/** Which channels are shown, and in which colour. */
export function chooseChannels(
  count: number,
  omero: readonly OmeroChannel[],
): Omit<ChannelDisplay, 'start' | 'end'>[] {
  if (count <= 1) return [{ channel: 0, color: [255, 255, 255] }];
  const primaries: [number, number, number][] = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
  ];
  if (count !== 3 && omero.length === count && omero.every((c) => c.color !== null)) {
    const shown = omero.map((c, i) => ({ c, i })).filter(({ c }) => c.active);
    const list = shown.length > 0 ? shown : omero.map((c, i) => ({ c, i }));
    return list.map(({ c, i }) => ({ channel: i, color: hexToRgb(c.color as string) }));
  }
  return primaries.slice(0, Math.min(3, count)).map((color, channel) => ({ channel, color }));
}

function hexToRgb(hex: string): [number, number, number] {
  const v = Number.parseInt(hex, 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/** The window of a channel from omero, else from the dtype (integers up to 16 bits), else null (use min/max). */
export function fixedWindow(
  dtype: ZarrNumericType,
  omero: OmeroChannel | undefined,
): [number, number] | null {
  if (dtype === 'uint8') return [0, 255];
  if (omero?.window) return [omero.window.start, omero.window.end];
  return DTYPE_RANGE[dtype] ?? null;
}

/** Maps raw values to 0..255 for one channel. */
export type ValueMapper = (value: number | bigint) => number;

export function makeMapper(start: number, end: number): ValueMapper {
  const span = end > start ? end - start : 1;
  const k = 255 / span;
  return (value) => {
    const v = typeof value === 'bigint' ? Number(value) : value;
    if (!(v > start)) return 0; // also NaN
    const out = Math.round((v - start) * k);
    return Math.min(out, 255);
  };
}

/**
 * A lookup table for small integer dtypes (index = value - offset), so that the mapping is one array read
 * per pixel; null for dtypes too wide for a table.
 */
export function makeLut(
  dtype: ZarrNumericType,
  start: number,
  end: number,
): { lut: Uint8Array; offset: number } | null {
  const range = DTYPE_RANGE[dtype];
  if (!range) return null;
  const [lo, hi] = range;
  const map = makeMapper(start, end);
  const lut = new Uint8Array(hi - lo + 1);
  for (let v = lo; v <= hi; v++) lut[v - lo] = map(v);
  return { lut, offset: -lo };
}

/** Writes opaque RGBA from per-channel 0..255 planes. */
export function composeRgba(
  planes: readonly Uint8Array[],
  shown: readonly ChannelDisplay[],
  pixels: number,
): Uint8Array {
  const out = new Uint8Array(pixels * 4);
  const isPrimaryOrWhite = (c: readonly number[]) => c.every((v) => v === 0 || v === 255);
  const separable =
    shown.every((s) => isPrimaryOrWhite(s.color)) &&
    [0, 1, 2].every((k) => shown.filter((s) => s.color[k] === 255).length <= 1);
  if (separable) {
    // Grey and plain RGB: every output component comes from at most one channel.
    for (let k = 0; k < 3; k++) {
      const idx = shown.findIndex((s) => s.color[k] === 255);
      if (idx < 0) continue;
      const plane = planes[idx];
      for (let p = 0; p < pixels; p++) out[p * 4 + k] = plane[p];
    }
  } else {
    const acc = new Float32Array(pixels * 3);
    shown.forEach((s, i) => {
      const plane = planes[i];
      const [r, g, b] = s.color.map((v) => v / 255);
      for (let p = 0; p < pixels; p++) {
        const v = plane[p];
        acc[p * 3] += v * r;
        acc[p * 3 + 1] += v * g;
        acc[p * 3 + 2] += v * b;
      }
    });
    for (let p = 0; p < pixels; p++) {
      for (let k = 0; k < 3; k++) out[p * 4 + k] = Math.min(255, Math.round(acc[p * 3 + k]));
    }
  }
  for (let p = 0; p < pixels; p++) out[p * 4 + 3] = 255;
  return out;
}

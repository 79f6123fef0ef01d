/**
 * What is derived from the finished label image band by band: per-label pixel counts (the class areas of the
 * summary) and a nearest-neighbour overview whose longest side is bounded (behind the overlay PNG).
 */
import { readLabelBands, type SlideOutput } from './slide-output.ts';

/** Exact pixel count per label value (0 … numLabels). */
export class LabelCounts implements SlideOutput<number[]> {
  readonly counts: number[];

  constructor(numLabels: number) {
    this.counts = new Array(numLabels + 1).fill(0) as number[];
  }

  band(labels: Uint8Array): undefined {
    const counts = this.counts;
    for (let i = 0; i < labels.length; i++) counts[labels[i]!] = (counts[labels[i]!] ?? 0) + 1;
    return undefined;
  }

  async finish(): Promise<number[]> {
    return this.counts;
  }
}

/** Nearest-neighbour downsampling of a `width` × `height` label image to at most `maxSize` on its longest side. */
export class LabelOverview implements SlideOutput<{ mask: Uint8Array; width: number; height: number }> {
  readonly mask: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly #sourceWidth: number;
  readonly #sourceHeight: number;

  constructor(width: number, height: number, maxSize: number) {
    const f = Math.max(1, Math.max(width, height) / maxSize);
    this.width = Math.max(1, Math.round(width / f));
    this.height = Math.max(1, Math.round(height / f));
    this.mask = new Uint8Array(this.width * this.height);
    this.#sourceWidth = width;
    this.#sourceHeight = height;
  }

  band(labels: Uint8Array, y0: number, rows: number): undefined {
    const W = this.#sourceWidth;
    const H = this.#sourceHeight;
    const { width: ow, height: oh, mask } = this;
    for (let oy = Math.max(0, Math.floor((y0 * oh) / H) - 1); oy < oh; oy++) {
      const sy = Math.min(H - 1, Math.floor((oy + 0.5) * (H / oh)));
      if (sy < y0) continue;
      if (sy >= y0 + rows) break;
      for (let ox = 0; ox < ow; ox++)
        mask[oy * ow + ox] = labels[(sy - y0) * W + Math.min(W - 1, Math.floor((ox + 0.5) * (W / ow)))]!;
    }
    return undefined;
  }

  async finish(): Promise<{ mask: Uint8Array; width: number; height: number }> {
    return { mask: this.mask, width: this.width, height: this.height };
  }
}

/**
 * Reads level 0 of the written label image back one band (a row of chunks, full width) at a time: exact per-label
 * pixel counts and a nearest-neighbour overview whose longest side is at most `maxSize` (for the overlay PNG);
 * each band is also handed to `onBand` (e.g. a polygon tracer) before the next one is read.
 */
export async function labelOverview(
  labelsPath: string,
  W: number,
  H: number,
  cs: number,
  maxSize: number,
  numLabels: number,
  onBand?: (band: Uint8Array, rows: number) => Promise<void> | undefined,
): Promise<{ mask: Uint8Array; width: number; height: number; counts: number[] }> {
  const counts = new LabelCounts(numLabels);
  const overview = new LabelOverview(W, H, maxSize);
  const tracer = { band: (band: Uint8Array, _y0: number, rows: number) => onBand?.(band, rows) };
  await readLabelBands(labelsPath, W, H, cs, [counts, overview, tracer]);
  return { ...(await overview.finish()), counts: counts.counts };
}

/**
 * Tissue fraction of any level-0 rectangle from a tissue mask, in O(1), by a summed-area table. The integral of a
 * piecewise-constant mask is bilinear inside each mask pixel, so bilinear interpolation of the table is exact for
 * rectangles that cut mask pixels partially.
 */
import type { TissueMask } from './tissue.ts';

export class TissueCoverage {
  readonly tissue: TissueMask;
  private readonly table: Float64Array;
  private readonly stride: number;
  /** Level-0 pixels per mask pixel along each axis. */
  readonly scaleX: number;
  readonly scaleY: number;
  /** Indices of the tissue pixels of the mask (for foreground sampling). */
  readonly foreground: Int32Array;

  constructor(tissue: TissueMask) {
    const { mask, width, height } = tissue;
    this.tissue = tissue;
    this.scaleX = tissue.slideWidth / width;
    this.scaleY = tissue.slideHeight / height;
    this.stride = width + 1;
    const table = new Float64Array((width + 1) * (height + 1));
    let count = 0;
    for (let y = 0; y < height; y++) {
      let rowSum = 0;
      for (let x = 0; x < width; x++) {
        rowSum += mask[y * width + x];
        table[(y + 1) * this.stride + x + 1] = table[y * this.stride + x + 1] + rowSum;
      }
      count += rowSum;
    }
    this.table = table;
    const fg = new Int32Array(count);
    for (let i = 0, k = 0; i < mask.length; i++) if (mask[i]) fg[k++] = i;
    this.foreground = fg;
  }

  /** ∫∫ of the mask over [0, u) × [0, v) in mask pixel units (u, v clamped to the mask). */
  private integral(u: number, v: number): number {
    const { width, height } = this.tissue;
    u = u < 0 ? 0 : Math.min(u, width);
    v = v < 0 ? 0 : Math.min(v, height);
    const i = Math.min(Math.floor(u), width - 1);
    const j = Math.min(Math.floor(v), height - 1);
    const fu = u - i;
    const fv = v - j;
    const t = this.table;
    const s = this.stride;
    const a = t[j * s + i];
    const b = t[j * s + i + 1];
    const c = t[(j + 1) * s + i];
    const d = t[(j + 1) * s + i + 1];
    return a * (1 - fu) * (1 - fv) + b * fu * (1 - fv) + c * (1 - fu) * fv + d * fu * fv;
  }

  /** Tissue fraction of the level-0 rectangle (x, y, w, h); the part outside the slide counts as background. */
  fraction(x: number, y: number, w: number, h: number): number {
    if (w <= 0 || h <= 0) return 0;
    const u0 = x / this.scaleX;
    const v0 = y / this.scaleY;
    const u1 = (x + w) / this.scaleX;
    const v1 = (y + h) / this.scaleY;
    const sum = this.integral(u1, v1) - this.integral(u0, v1) - this.integral(u1, v0) + this.integral(u0, v0);
    return sum / ((u1 - u0) * (v1 - v0));
  }
}

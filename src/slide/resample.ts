/** Resampling of RGBA images: OpenSlide's sub-pixel shift (pixman bilinear) and an area filter for downscaling. */
import type { RGBAImage } from './types.ts';

/**
 * Samples `src` (premultiplied-equivalent: alpha 0 pixels carry no colour) at a sub-pixel offset the way
 * cairo/pixman do when OpenSlide paints a tile translated by a fraction of a pixel: bilinear with 7-bit
 * weights, premultiplied arithmetic truncated, then un-premultiplied as openslide-python does.
 * Output pixel (i, j) = bilinear at source (i + fx, j + fy), fx, fy in [0, 1); src is (w + 1) x (h + 1).
 */
export function bilinearShift(src: RGBAImage, fx: number, fy: number, w: number, h: number): Uint8Array {
  const wx = Math.floor(fx * 128) * 2;
  const wy = Math.floor(fy * 128) * 2;
  const out = new Uint8Array(w * h * 4);
  const sw = src.width;
  const s = src.data;
  const w00 = (256 - wx) * (256 - wy);
  const w10 = wx * (256 - wy);
  const w01 = (256 - wx) * wy;
  const w11 = wx * wy;
  const pre = new Float64Array(4);
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      const a = (j * sw + i) * 4;
      const b = a + 4;
      const c = a + sw * 4;
      const d = c + 4;
      const alpha = Math.floor((s[a + 3] * w00 + s[b + 3] * w10 + s[c + 3] * w01 + s[d + 3] * w11) / 65536);
      for (let k = 0; k < 3; k++) {
        // Premultiply (alpha is 0 or 255 in the source), interpolate, truncate like pixman.
        const pa = (s[a + k] * s[a + 3]) / 255;
        const pb = (s[b + k] * s[b + 3]) / 255;
        const pc = (s[c + k] * s[c + 3]) / 255;
        const pd = (s[d + k] * s[d + 3]) / 255;
        pre[k] = Math.floor((pa * w00 + pb * w10 + pc * w01 + pd * w11) / 65536);
      }
      const o = (j * w + i) * 4;
      out[o + 3] = alpha;
      if (alpha === 255) {
        out[o] = pre[0];
        out[o + 1] = pre[1];
        out[o + 2] = pre[2];
      } else if (alpha > 0) {
        for (let k = 0; k < 3; k++)
          out[o + k] = Math.min(255, Math.floor((pre[k] * 255 + alpha / 2) / alpha));
      }
    }
  }
  return out;
}

/**
 * Resizes with an area (box) filter: output pixel (i, j) averages the source rectangle
 * [i*sx, (i+1)*sx) x [j*sy, (j+1)*sy) with fractional edge coverage, in premultiplied alpha.
 * Scales below 1 (upsampling) fall back to bilinear at pixel centres.
 */
export function resampleArea(src: RGBAImage, sx: number, sy: number, outW: number, outH: number): Uint8Array {
  const out = new Uint8Array(outW * outH * 4);
  const xs = axisWeights(src.width, sx, outW);
  const ys = axisWeights(src.height, sy, outH);
  const acc = new Float64Array(4);
  const s = src.data;
  for (let j = 0; j < outH; j++) {
    const ry = ys[j];
    for (let i = 0; i < outW; i++) {
      const rx = xs[i];
      acc.fill(0);
      let total = 0;
      for (let b = 0; b < ry.idx.length; b++) {
        const row = ry.idx[b] * src.width;
        for (let a = 0; a < rx.idx.length; a++) {
          const wgt = rx.w[a] * ry.w[b];
          const p = (row + rx.idx[a]) * 4;
          const al = s[p + 3] * wgt;
          acc[0] += s[p] * al;
          acc[1] += s[p + 1] * al;
          acc[2] += s[p + 2] * al;
          acc[3] += al;
          total += wgt;
        }
      }
      const o = (j * outW + i) * 4;
      if (total > 0 && acc[3] > 0) {
        out[o] = Math.round(acc[0] / acc[3]);
        out[o + 1] = Math.round(acc[1] / acc[3]);
        out[o + 2] = Math.round(acc[2] / acc[3]);
        out[o + 3] = Math.round(acc[3] / total);
      }
    }
  }
  return out;
}

interface Taps {
  idx: number[];
  w: number[];
}

function axisWeights(size: number, scale: number, outSize: number): Taps[] {
  const taps: Taps[] = [];
  for (let i = 0; i < outSize; i++) {
    const idx: number[] = [];
    const w: number[] = [];
    if (scale <= 1) {
      const c = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), size - 1);
      const i0 = Math.floor(c);
      const f = c - i0;
      idx.push(i0);
      w.push(1 - f);
      if (f > 0 && i0 + 1 < size) {
        idx.push(i0 + 1);
        w.push(f);
      }
    } else {
      const start = i * scale;
      const end = Math.min((i + 1) * scale, size);
      for (let k = Math.floor(start); k < Math.ceil(end); k++) {
        const cover = Math.min(end, k + 1) - Math.max(start, k);
        if (cover > 1e-9) {
          idx.push(k);
          w.push(cover);
        }
      }
      if (idx.length === 0) {
        idx.push(Math.min(Math.floor(start), size - 1));
        w.push(1);
      }
    }
    taps.push({ idx, w });
  }
  return taps;
}

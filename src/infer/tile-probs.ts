/**
 * Logits at stride 4 → class probabilities at tile resolution: bilinear upsampling with half-pixel centres
 * (PyTorch `interpolate(align_corners=False)`, TF.js `resizeBilinear(…, halfPixelCenters)`), then softmax over
 * classes. Written out in plain loops so the whole-slide pipeline needs no tensor round trips per tile.
 */

export interface AxisMap {
  lo: Int32Array;
  hi: Int32Array;
  frac: Float32Array;
}

const axisCache = new Map<string, AxisMap>();

/** Source indices and weights for each output position along one axis (TF.js's half-pixel formula). */
export function axisMap(inSize: number, outSize: number): AxisMap {
  const key = `${inSize}:${outSize}`;
  const cached = axisCache.get(key);
  if (cached) return cached;
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const frac = new Float32Array(outSize);
  const ratio = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const src = ratio * (o + 0.5) - 0.5;
    const floor = Math.max(0, Math.floor(src));
    lo[o] = floor;
    hi[o] = Math.min(inSize - 1, Math.ceil(src));
    frac[o] = src - floor;
  }
  const map = { lo, hi, frac };
  axisCache.set(key, map);
  return map;
}

/**
 * Probabilities (H×W×C, row-major, float32) of item `b` of an NCHW logits batch, upsampled to outH × outW.
 * `out` is reused when given.
 */
/**
 * The softmax's shared step: v[c] = exp(v[c] − max) for the first C values, in place; returns 1 / their sum, so
 * that v[c] · the result is the probability.
 */
export function expShifted(v: Float64Array | Float32Array | number[], C: number, max: number): number {
  let sum = 0;
  for (let c = 0; c < C; c++) {
    const e = Math.exp(v[c]! - max);
    v[c] = e;
    sum += e;
  }
  return 1 / sum;
}

export function upsampledSoftmax(
  logits: Float32Array,
  dims: { classes: number; height: number; width: number },
  b: number,
  outH: number,
  outW: number,
  out?: Float32Array,
): Float32Array {
  const { classes: C, height: h, width: w } = dims;
  const probs = out && out.length === outH * outW * C ? out : new Float32Array(outH * outW * C);
  const ay = axisMap(h, outH);
  const ax = axisMap(w, outW);
  const plane = h * w;
  const base = b * C * plane;
  const v = new Float32Array(C);
  for (let y = 0; y < outH; y++) {
    const r0 = ay.lo[y]! * w;
    const r1 = ay.hi[y]! * w;
    const fy = ay.frac[y]!;
    for (let x = 0; x < outW; x++) {
      const c0 = ax.lo[x]!;
      const c1 = ax.hi[x]!;
      const fx = ax.frac[x]!;
      let max = -Infinity;
      for (let c = 0; c < C; c++) {
        const p = base + c * plane;
        const tl = logits[p + r0 + c0]!;
        const tr = logits[p + r0 + c1]!;
        const bl = logits[p + r1 + c0]!;
        const br = logits[p + r1 + c1]!;
        const top = tl + (tr - tl) * fx;
        const bottom = bl + (br - bl) * fx;
        const val = top + (bottom - top) * fy;
        v[c] = val;
        if (val > max) max = val;
      }
      const inv = expShifted(v, C, max);
      const o = (y * outW + x) * C;
      for (let c = 0; c < C; c++) probs[o + c] = v[c]! * inv;
    }
  }
  return probs;
}

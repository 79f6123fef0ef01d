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

/** A double from its high and low 32-bit words. */
function fromWords(hi: number, lo: number): number {
  const v = new DataView(new ArrayBuffer(8));
  v.setUint32(0, hi >>> 0);
  v.setUint32(4, lo >>> 0);
  return v.getFloat64(0);
}

// fdlibm's e_exp.c (Sun Microsystems, 1993), the algorithm behind V8's Math.exp: argument reduction
// x = k·ln2 + r (ln2 split in a high part exact for |k| < 2^11 and a low part), a degree-5 Remez polynomial for
// r·(e^r + 1)/(e^r − 1), and a scaling by 2^k.
const LN2_HI = fromWords(0x3fe62e42, 0xfee00000);
const LN2_LO = fromWords(0x3dea39ef, 0x35793c76);
const INV_LN2 = fromWords(0x3ff71547, 0x652b82fe);
const P1 = fromWords(0x3fc55555, 0x5555553e);
const P2 = fromWords(0xbf66c16c, 0x16bebd93);
const P3 = fromWords(0x3f11566a, 0xaf25de2c);
const P4 = fromWords(0xbebbbd41, 0xc5d26bf1);
const P5 = fromWords(0x3e663769, 0x72bea4d0);
/** |x| at or above: reduce (high word of |x| > 0x3FD62E42, i.e. |x| > ln2 / 2). */
const HALF_LN2 = fromWords(0x3fd62e43, 0);
/** |x| below (and reduced): k = ±1 with the high part of ln2 subtracted directly. */
const THREE_HALVES_LN2 = fromWords(0x3ff0a2b2, 0);
/** |x| below: e^x = 1 + x. */
const TINY = fromWords(0x3e300000, 0);
/** 2^k for k in [-1022, 1023], at index k + 1022. */
const POW2 = Float64Array.from({ length: 2046 }, (_, i) => fromWords((0x3ff + i - 1022) << 20, 0));

/**
 * `Math.exp(x)`, bit for bit (test/infer-blend.test.ts checks it against the engine), without the call out of
 * optimised code that costs V8 more than the arithmetic: about a fifth of the fused blend's time. Arguments whose
 * result leaves the normal range (|x| ≥ 700), NaN and ±Infinity go to Math.exp itself.
 */
export function exp(x: number): number {
  const ax = Math.abs(x);
  if (!(ax < 700)) return Math.exp(x);
  if (ax < HALF_LN2) {
    if (ax < TINY) return 1 + x;
    const t = x * x;
    const c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    return 1 - ((x * c) / (c - 2) - x);
  }
  let k: number;
  let hi: number;
  let lo: number;
  if (ax < THREE_HALVES_LN2) {
    if (x === 1) return Math.E;
    k = x > 0 ? 1 : -1;
    hi = x - k * LN2_HI;
    lo = k * LN2_LO;
  } else {
    // Truncated toward zero after adding ±0.5: the nearest integer to x / ln2.
    k = (INV_LN2 * x + (x < 0 ? -0.5 : 0.5)) | 0;
    hi = x - k * LN2_HI;
    lo = k * LN2_LO;
  }
  const r = hi - lo;
  const t = r * r;
  const c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  const y = 1 - (lo - (r * c) / (2 - c) - hi);
  return y * POW2[k + 1022]!;
}

/**
 * The softmax's shared step: v[c] = exp(v[c] − max) for the first C values, in place; returns 1 / their sum, so
 * that v[c] · the result is the probability.
 */
export function expShifted(v: Float64Array | Float32Array | number[], C: number, max: number): number {
  let sum = 0;
  for (let c = 0; c < C; c++) {
    const e = exp(v[c]! - max);
    v[c] = e;
    sum += e;
  }
  return 1 / sum;
}

/**
 * Probabilities (H×W×C, row-major, float32) of item `b` of an NCHW logits batch, upsampled to outH × outW.
 * `out` is reused when given.
 */
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

/**
 * slideseg's SIMD loops (simd.wat) instantiated on the TF.js wasm backend's own memory, so they read and write
 * tensors in place by heap byte offset. Null where the backend's memory is not reachable or the engine has no
 * wasm SIMD; callers then use their JavaScript loops.
 */

import { SIMD_WASM_BASE64 } from './simd-module.ts';
import type { WasmBackend } from './wasm-heap.ts';

export interface SimdKernels {
  /** acc[i] += a[i]·b[i], i < n rounded down to a multiple of 4 (byte offsets). */
  mulAcc: (acc: number, a: number, b: number, n: number) => void;
  /** y = x·Φ(x) for the first n − n % 8 elements. */
  gelu: (y: number, x: number, n: number) => void;
  /** dx = dy·(Φ(x) + x·φ(x)) for the first n − n % 8 elements. */
  geluGrad: (dx: number, dy: number, x: number, n: number) => void;
  /** acc[j] += Σ_r x[r, j] over x [rows, c] in float32, c a multiple of 4. */
  colSum: (acc: number, x: number, rows: number, c: number) => void;
  /** LayerNorm of x [rows, c] (c a multiple of 4) into y, with each row's mean and 1/σ. */
  layerNorm: (
    y: number,
    x: number,
    gamma: number,
    beta: number,
    meanOut: number,
    invStdOut: number,
    rows: number,
    c: number,
    eps: number,
  ) => void;
  /** LayerNorm backward: dx, and dγ/dβ added into float32 partial sums. */
  layerNormGrad: (
    dx: number,
    dy: number,
    x: number,
    gamma: number,
    mean: number,
    invStd: number,
    dgamma: number,
    dbeta: number,
    rows: number,
    c: number,
  ) => void;
  /** c [m, n] += aᵀ b for a [k, m], b [k, n] with row strides lda, ldb, ldc (m a multiple of 4, n of 8). */
  matMulAtB: (
    c: number,
    a: number,
    b: number,
    m: number,
    n: number,
    k: number,
    lda: number,
    ldb: number,
    ldc: number,
  ) => void;
  /** c [m, n] += a b for a [m, k], b [k, n] with row strides ldb and ldc (m a multiple of 4, n of 8). */
  matMulAB: (
    c: number,
    a: number,
    b: number,
    m: number,
    n: number,
    k: number,
    ldb: number,
    ldc: number,
  ) => void;
  /** One bilinear output pixel over ch channels (a multiple of 4), all pointers byte offsets. */
  bilerp: BilerpOp;
  /** The adjoint of bilerp: tl, tr, bl, br += g·weights. */
  bilerpGrad: BilerpOp;
  /** Depthwise 3×3 stride-1 correlation of a zero-padded image xp [h+2, w+2, c] plus bias into y [h, w, c]. */
  depthwise3x3: (y: number, xp: number, f: number, bias: number, h: number, w: number, c: number) => void;
  /** One AdamW update of the first n − n % 4 elements (adamw.ts: the float32 constants in its order). */
  adamw: (
    pOut: number,
    mOut: number,
    vOut: number,
    p: number,
    m: number,
    v: number,
    g: number,
    n: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    bc2: number,
    eps: number,
    decay: number,
    stepSize: number,
  ) => void;
}

/** One pixel's bilinear step between a pixel `px` and its four source taps (byte offsets), ch channels. */
export type BilerpOp = (
  px: number,
  tl: number,
  tr: number,
  bl: number,
  br: number,
  ch: number,
  fc: number,
  fr: number,
) => void;

/** Rows summed in float32 by the SIMD loops before the caller adds the partial sums into float64. */
export const SIMD_ROW_BLOCK = 64;

/** The WebAssembly global, typed here because the project's lib settings include neither DOM nor its types. */
const WA = (
  globalThis as unknown as {
    WebAssembly?: {
      Memory: abstract new (...args: never[]) => object;
      Module: new (bytes: Uint8Array) => object;
      Instance: new (module: object, imports: object) => { exports: unknown };
    };
  }
).WebAssembly;

const byModule = new WeakMap<object, SimdKernels | null>();
let disabled = false;

/** Turns the SIMD loops off (tests compare them with the JavaScript loops). */
export function setSimdKernels(enabled: boolean): void {
  disabled = !enabled;
}

function decode(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function simdKernels(backend: WasmBackend): SimdKernels | null {
  if (disabled) return null;
  const wasm = backend.wasm as unknown as { asm?: { memory?: unknown } };
  const cached = byModule.get(backend.wasm);
  if (cached !== undefined) return cached;
  let kernels: SimdKernels | null = null;
  const memory = wasm.asm?.memory;
  if (WA && memory instanceof WA.Memory) {
    try {
      const module = new WA.Module(decode(SIMD_WASM_BASE64));
      const instance = new WA.Instance(module, { env: { memory } });
      kernels = instance.exports as unknown as SimdKernels;
    } catch {
      // No wasm SIMD in this engine: the JavaScript loops stay in use.
      kernels = null;
    }
  }
  byModule.set(backend.wasm, kernels);
  return kernels;
}

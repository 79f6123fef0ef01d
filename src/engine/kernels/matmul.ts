/**
 * BatchMatMul and _FusedMatMul for wasm, routed through XNNPACK for every shape.
 *
 * The stock wasm kernel uses XNNPACK only for one batch without transposes; anything else (batched attention,
 * [B, N, C] x [C, D] linear layers with B > 1, every transposed product of a backward pass) falls to a naive
 * triple loop at ~2 GFLOPS. Here transposes are materialised with the wasm Transpose kernel and each batch slice
 * goes through the fast path, ~20 GFLOPS single-threaded.
 */

import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { type SimdKernels, simdKernels } from './simd.ts';
import {
  byteOffset,
  f32,
  matMulAt,
  release,
  reshaped,
  runWasmKernel,
  transposeLast2,
  type WasmBackend,
} from './wasm-heap.ts';

const F32 = 4;

/** For each output batch index, the batch index into a or b (numpy broadcasting of the leading dims). */
function broadcastIndex(outOuter: number[], inOuter: number[]): Int32Array {
  const total = tf.util.sizeFromShape(outOuter);
  const idx = new Int32Array(total);
  const rank = outOuter.length;
  const padded = new Array(rank - inOuter.length).fill(1).concat(inOuter) as number[];
  const inStrides = new Array(rank).fill(0) as number[];
  for (let d = rank - 1, s = 1; d >= 0; d--) {
    inStrides[d] = padded[d] === 1 ? 0 : s;
    s *= padded[d];
  }
  for (let i = 0; i < total; i++) {
    let rem = i;
    let j = 0;
    for (let d = rank - 1; d >= 0; d--) {
      const coord = rem % outOuter[d];
      rem = (rem - coord) / outOuter[d];
      j += coord * inStrides[d];
    }
    idx[i] = j;
  }
  return idx;
}

/** Column panels of the SIMD product loops: at most this many columns of A or B per pass. */
const PANEL = 256;

/**
 * A [rows, cols] (row stride cols) copied panel by panel (PANEL columns each) into contiguous [rows, width] blocks,
 * the block of columns c0… at float offset c0·rows. Read in place, rows of a wide matrix lie ≥ 1 KB apart, and
 * rows 4 KB apart share cache sets: a panel of them does not stay cached across the tile loop's passes.
 */
function packPanels(backend: WasmBackend, off: number, rows: number, cols: number): TensorInfo {
  const packed = backend.makeOutput([rows * cols], 'float32');
  const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
  const dst = byteOffset(backend, packed) / F32;
  const src = off / F32;
  for (let c0 = 0; c0 < cols; c0 += PANEL) {
    const width = Math.min(PANEL, cols - c0);
    for (let r = 0; r < rows; r++) {
      heap.copyWithin(dst + c0 * rows + r * width, src + r * cols + c0, src + r * cols + c0 + width);
    }
  }
  return packed;
}

/**
 * C = Aᵀ B for A [k, m], B [k, n] with the SIMD tile loop of simd.wat (m a multiple of 4, n of 8), in panels of at
 * most 256 columns of A and of B (packed contiguously when wider), k cut into chunks whose rows of the two panels
 * together stay within ~256 KB so that they are reused from cache across the tiles. XNNPACK's packed product runs
 * these long-k shapes (weight gradients: k = pixels) at memory speed.
 */
export function matMulAtBSimd(
  backend: WasmBackend,
  simd: SimdKernels,
  aOff: number,
  bOff: number,
  outOff: number,
  m: number,
  k: number,
  n: number,
  /** Add into C instead of overwriting it. */
  accumulate = false,
): void {
  const aPacked = m > PANEL ? packPanels(backend, aOff, k, m) : null;
  const bPacked = n > PANEL ? packPanels(backend, bOff, k, n) : null;
  if (!accumulate) new Float32Array(backend.wasm.HEAPU8.buffer, outOff, m * n).fill(0);
  for (let i0 = 0; i0 < m; i0 += PANEL) {
    const wi = Math.min(PANEL, m - i0);
    const lda = aPacked ? wi : m;
    const aPanel = aPacked ? byteOffset(backend, aPacked) + i0 * k * F32 : aOff;
    for (let j0 = 0; j0 < n; j0 += PANEL) {
      const wj = Math.min(PANEL, n - j0);
      const ldb = bPacked ? wj : n;
      const bPanel = bPacked ? byteOffset(backend, bPacked) + j0 * k * F32 : bOff;
      const kc = Math.max(16, Math.floor(65536 / (wi + wj)));
      for (let k0 = 0; k0 < k; k0 += kc) {
        simd.matMulAtB(
          outOff + (i0 * n + j0) * F32,
          aPanel + k0 * lda * F32,
          bPanel + k0 * ldb * F32,
          wi,
          wj,
          Math.min(kc, k - k0),
          lda,
          ldb,
          n,
        );
      }
    }
  }
  release(backend, aPacked ?? undefined, bPacked ?? undefined);
}

/**
 * C = Aᵀ B as matMulAtBSimd for any n: n not a multiple of 8 (e.g. a 2-class classifier's weight gradient) runs
 * on B and C padded with zero columns, instead of transposing all of A for XNNPACK.
 */
function matMulAtBAnyN(
  backend: WasmBackend,
  simd: SimdKernels,
  aOff: number,
  bOff: number,
  outOff: number,
  m: number,
  k: number,
  n: number,
): void {
  if (n % 8 === 0) {
    matMulAtBSimd(backend, simd, aOff, bOff, outOff, m, k, n);
    return;
  }
  const n8 = Math.ceil(n / 8) * 8;
  const bPad = backend.makeOutput([k, n8], 'float32');
  const cPad = backend.makeOutput([m, n8], 'float32');
  const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
  const bp = byteOffset(backend, bPad) / F32;
  heap.fill(0, bp, bp + k * n8);
  for (let r = 0; r < k; r++) heap.copyWithin(bp + r * n8, bOff / F32 + r * n, bOff / F32 + r * n + n);
  matMulAtBSimd(backend, simd, aOff, byteOffset(backend, bPad), byteOffset(backend, cPad), m, k, n8);
  const cp = byteOffset(backend, cPad) / F32;
  const heap2 = new Float32Array(backend.wasm.HEAPU8.buffer);
  for (let r = 0; r < m; r++) heap2.copyWithin(outOff / F32 + r * n, cp + r * n8, cp + r * n8 + n);
  release(backend, bPad, cPad);
}

let simdProducts = true;

/** Turns the SIMD A·B tile loop off (XNNPACK for every product), to compare the two in benchmarks. */
export function setSimdProducts(enabled: boolean): void {
  simdProducts = enabled;
}

/** Whether the SIMD A·B tile loop takes [m, k] × [k, n]: its 4 × 8 tiles fit. */
function simdProductFits(m: number, n: number): boolean {
  return simdProducts && m % 4 === 0 && n % 8 === 0;
}

/**
 * Columns of B per pass of the A·B tile loop: a panel of B (k rows) stays within ~256 KB of cache while every row
 * of A passes over it. Wider products without panels stream all of B from memory for each 4 rows of A (XNNPACK's
 * packed product was as fast then; with panels the loop is 1.3-1.5× XNNPACK at n = 640-1024).
 */
function panelWidth(k: number, n: number): number {
  return Math.min(n, Math.max(8, Math.floor(65536 / Math.max(1, k) / 8) * 8));
}

/**
 * out [m, n] = a [m, k] · b [k, n] at heap byte offsets: the SIMD tile loop of simd.wat where it fits (1.2-2.5×
 * XNNPACK on SegFormer's narrow products), else XNNPACK. `init` (n floats) starts every row instead of zeros.
 */
function productAt(
  backend: WasmBackend,
  aOff: number,
  bOff: number,
  outOff: number,
  m: number,
  k: number,
  n: number,
  init?: Float32Array,
): boolean {
  const simd = simdProductFits(m, n) ? simdKernels(backend) : null;
  if (!simd) {
    if (init) return false;
    matMulAt(backend, aOff, bOff, outOff, m, k, n);
    return true;
  }
  const out = new Float32Array(backend.wasm.HEAPU8.buffer, outOff, m * n);
  if (init) for (let r = 0; r < m; r++) out.set(init, r * n);
  else out.fill(0);
  const panel = panelWidth(k, n);
  if (panel >= n) {
    simd.matMulAB(outOff, aOff, bOff, m, n, k, n, n);
    return true;
  }
  // Each panel of B is copied into contiguous rows first: read in place, its rows lie n floats apart (4 KB for
  // n = 1024), and rows that far apart share cache sets, so the panel would not stay cached (26 vs 49 GFLOP/s).
  const packed = backend.makeOutput([k * panel], 'float32');
  const packedOff = byteOffset(backend, packed);
  const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
  for (let j = 0; j < n; j += panel) {
    const width = Math.min(panel, n - j);
    const src = bOff / F32 + j;
    const dst = packedOff / F32;
    for (let r = 0; r < k; r++) heap.copyWithin(dst + r * width, src + r * n, src + r * n + width);
    simd.matMulAB(outOff + j * F32, aOff, packedOff, m, width, k, width, n);
  }
  release(backend, packed);
  return true;
}

/** C = op(A) x op(B) on wasm tensors of rank >= 2, broadcasting leading dims. */
export function wasmMatMul(
  backend: WasmBackend,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): TensorInfo {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb) {
    throw new Error(
      `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ${b.shape} and ` +
        `transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const outOuter = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  const batchA = tf.util.sizeFromShape(outerA);
  const batchB = tf.util.sizeFromShape(outerB);
  const batch = tf.util.sizeFromShape(outOuter);

  const simd = transposeA && !transposeB && simdProducts && m % 4 === 0 ? simdKernels(backend) : null;
  if (simd) {
    const out = backend.makeOutput([...outOuter, m, n], 'float32');
    const ia = broadcastIndex(outOuter, outerA);
    const ib = broadcastIndex(outOuter, outerB);
    const aOff = byteOffset(backend, a);
    const bOff = byteOffset(backend, b);
    const outOff = byteOffset(backend, out);
    for (let i = 0; i < batch; i++) {
      matMulAtBAnyN(
        backend,
        simd,
        aOff + ia[i]! * k * m * F32,
        bOff + ib[i]! * k * n * F32,
        outOff + i * m * n * F32,
        m,
        k,
        n,
      );
    }
    return out;
  }
  const a3 = reshaped(backend, a, transposeA ? [batchA, k, m] : [batchA, m, k]);
  const b3 = reshaped(backend, b, transposeB ? [batchB, n, k] : [batchB, k, n]);
  const aRows = transposeA ? transposeLast2(backend, a3) : a3;
  const bRows = transposeB ? transposeLast2(backend, b3) : b3;
  const out = backend.makeOutput([...outOuter, m, n], 'float32');

  const aOff = byteOffset(backend, aRows);
  const bOff = byteOffset(backend, bRows);
  const outOff = byteOffset(backend, out);
  if (batchB === 1 && batchA === batch) {
    // Every batch of A against the same B: one product with the batches stacked as rows.
    productAt(backend, aOff, bOff, outOff, batch * m, k, n);
  } else if (batchA === 1 && batchB === batch && batch > 1) {
    // One A against every batch of B (e.g. an interpolation matrix applied to many maps): one product
    // A [m, k] x B' [k, batch*n] with B' = B permuted to [k, batch, n], then the result permuted back.
    const bWide = runWasmKernel('Transpose', backend, { x: bRows }, { perm: [1, 0, 2] });
    const wide = backend.makeOutput([m, batch, n], 'float32');
    matMulAt(backend, aOff, byteOffset(backend, bWide), byteOffset(backend, wide), m, k, batch * n);
    const permuted = runWasmKernel('Transpose', backend, { x: wide }, { perm: [1, 0, 2] });
    release(backend, bWide, wide, a3, b3);
    if (aRows !== a3) release(backend, aRows);
    if (bRows !== b3) release(backend, bRows);
    release(backend, out);
    permuted.shape = [...outOuter, m, n];
    return permuted;
  } else {
    const ia = broadcastIndex(outOuter, outerA);
    const ib = broadcastIndex(outOuter, outerB);
    for (let i = 0; i < batch; i++) {
      productAt(
        backend,
        aOff + ia[i] * m * k * F32,
        bOff + ib[i] * k * n * F32,
        outOff + i * m * n * F32,
        m,
        k,
        n,
      );
    }
  }
  release(backend, a3, b3);
  if (aRows !== a3) release(backend, aRows);
  if (bRows !== b3) release(backend, bRows);
  return out;
}

export function batchMatMulKernel(fallback: KernelFunc | undefined): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    if ((a.dtype !== 'float32' || b.dtype !== 'float32') && fallback) return fallback(args);
    return wasmMatMul(args.backend as WasmBackend, a, b, transposeA, transposeB);
  };
}

/** Activations of `tf.fused.*` mapped to wasm kernels applied after the product. */
function activate(
  backend: WasmBackend,
  x: TensorInfo,
  activation: string,
  preluWeights: TensorInfo | undefined,
  leakyreluAlpha: number | undefined,
): TensorInfo {
  switch (activation) {
    case 'linear':
      return x;
    case 'relu':
      return runWasmKernel('Relu', backend, { x });
    case 'relu6':
      return runWasmKernel('Relu6', backend, { x });
    case 'elu':
      return runWasmKernel('Elu', backend, { x });
    case 'sigmoid':
      return runWasmKernel('Sigmoid', backend, { x });
    case 'leakyrelu':
      return runWasmKernel('LeakyRelu', backend, { x }, { alpha: leakyreluAlpha ?? 0.2 });
    case 'prelu':
      if (!preluWeights) throw new Error('_FusedMatMul: prelu activation needs preluActivationWeights');
      return runWasmKernel('Prelu', backend, { x, alpha: preluWeights });
    default:
      throw new Error(`_FusedMatMul: activation '${activation}' is not supported on wasm`);
  }
}

export function fusedMatMulKernel(fallback: KernelFunc | undefined): KernelFunc {
  return (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
    const { transposeA, transposeB, activation, leakyreluAlpha } = args.attrs as {
      transposeA: boolean;
      transposeB: boolean;
      activation: string;
      leakyreluAlpha?: number;
    };
    if (!a || !b) throw new Error('_FusedMatMul needs inputs a and b');
    if ((a.dtype !== 'float32' || b.dtype !== 'float32') && fallback) return fallback(args);
    // The stock kernel's own fast path (one batch, no transposes) hands the bias and relu to XNNPACK's fully
    // connected operator: no separate pass over the output, 10-40 % faster on SegFormer's linear layers.
    const stockFast =
      fallback != null &&
      !transposeA &&
      !transposeB &&
      a.shape.length === 3 &&
      b.shape.length === 3 &&
      a.shape[0] === 1 &&
      b.shape[0] === 1 &&
      // (the stock kernel reads the bias rank from its storage record, not from the TensorInfo)
      (bias == null ||
        ((args.backend as WasmBackend).dataIdMap.get(bias.dataId).shape.length === 1 &&
          bias.shape[0] === b.shape[2] &&
          bias.dtype === 'float32')) &&
      (activation == null || activation === 'linear' || activation === 'relu') &&
      preluActivationWeights == null;
    if (
      !transposeA &&
      !transposeB &&
      a.shape.length === 3 &&
      b.shape.length === 3 &&
      a.shape[0] === 1 &&
      b.shape[0] === 1 &&
      simdProductFits(a.shape[1]!, b.shape[2]!) &&
      (bias == null || (bias.dtype === 'float32' && tf.util.sizeFromShape(bias.shape) === b.shape[2])) &&
      (activation == null || activation === 'linear' || activation === 'relu') &&
      preluActivationWeights == null
    ) {
      const backend = args.backend as WasmBackend;
      const [, m, k] = a.shape as [number, number, number];
      const n = b.shape[2]!;
      const out = backend.makeOutput([1, m, n], 'float32');
      const init = bias ? f32(backend, bias).slice() : undefined;
      if (
        productAt(
          backend,
          byteOffset(backend, a),
          byteOffset(backend, b),
          byteOffset(backend, out),
          m,
          k,
          n,
          init,
        )
      ) {
        if (activation !== 'relu') return out;
        const y = runWasmKernel('Relu', backend, { x: out });
        release(backend, out);
        return y;
      }
      release(backend, out);
    }
    if (stockFast) return fallback(args);
    const backend = args.backend as WasmBackend;
    const product = wasmMatMul(backend, a, b, transposeA, transposeB);
    let y = product;
    if (bias) {
      y = runWasmKernel('Add', backend, { a: product, b: bias });
      release(backend, product);
    }
    const activated = activate(backend, y, activation ?? 'linear', preluActivationWeights, leakyreluAlpha);
    if (activated !== y) release(backend, y);
    return activated;
  };
}

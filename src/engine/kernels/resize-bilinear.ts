/**
 * Bilinear resize (NHWC) and its exact gradient, honouring `alignCorners` and `halfPixelCenters`.
 *
 * Why: tfjs 4.22's ResizeBilinearGrad ignores `halfPixelCenters` on every backend (PyTorch's
 * `align_corners=False` is `halfPixelCenters: true`, so SegFormer's decoder got wrong gradients), the cpu one
 * also returns [b, w, h, c] for non-square images, and the wasm forward is ~5x slower than a tight JS loop.
 * The gradient here is the exact adjoint of the forward: same taps, same weights.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { type BilerpOp, simdKernels } from './simd.ts';
import { byteOffset, f32, type WasmBackend } from './wasm-heap.ts';

interface ResizeAttrs {
  alignCorners: boolean;
  halfPixelCenters: boolean;
  size?: [number, number];
}

/** Source taps along one axis for each output index: value = (1 - frac) * in[lo] + frac * in[hi]. */
interface AxisTaps {
  lo: Int32Array;
  hi: Int32Array;
  frac: Float64Array;
}

function axisTaps(
  inSize: number,
  outSize: number,
  alignCorners: boolean,
  halfPixelCenters: boolean,
): AxisTaps {
  const effIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  const scale = effIn / effOut;
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const frac = new Float64Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const src = halfPixelCenters ? scale * (i + 0.5) - 0.5 : scale * i;
    // Same arithmetic as the tfjs cpu forward (a negative source position reads index 0 with weights summing to 1).
    const floor = Math.max(0, Math.floor(src));
    lo[i] = Math.min(floor, inSize - 1);
    hi[i] = Math.min(inSize - 1, Math.ceil(src));
    frac[i] = src - floor;
  }
  return { lo, hi, frac };
}

export function resizeBilinearForward(
  x: Float32Array,
  out: Float32Array,
  shape: number[],
  outH: number,
  outW: number,
  attrs: ResizeAttrs,
): void {
  const [batch, inH, inW, ch] = shape;
  const rows = axisTaps(inH, outH, attrs.alignCorners, attrs.halfPixelCenters);
  const cols = axisTaps(inW, outW, attrs.alignCorners, attrs.halfPixelCenters);
  let o = 0;
  for (let b = 0; b < batch; b++) {
    const base = b * inH * inW * ch;
    for (let r = 0; r < outH; r++) {
      const top = base + rows.lo[r] * inW * ch;
      const bot = base + rows.hi[r] * inW * ch;
      const fr = rows.frac[r];
      for (let c = 0; c < outW; c++) {
        const l = cols.lo[c] * ch;
        const rt = cols.hi[c] * ch;
        const fc = cols.frac[c];
        for (let d = 0; d < ch; d++) {
          const tl = x[top + l + d];
          const bl = x[bot + l + d];
          const t = tl + (x[top + rt + d] - tl) * fc;
          const bt = bl + (x[bot + rt + d] - bl) * fc;
          out[o++] = t + (bt - t) * fr;
        }
      }
    }
  }
}

/** dx (zeroed, shape [b, inH, inW, c]) += adjoint of the forward applied to dy [b, outH, outW, c]. */
export function resizeBilinearBackward(
  dy: Float32Array,
  dx: Float32Array,
  xShape: number[],
  outH: number,
  outW: number,
  attrs: ResizeAttrs,
): void {
  const [batch, inH, inW, ch] = xShape;
  const rows = axisTaps(inH, outH, attrs.alignCorners, attrs.halfPixelCenters);
  const cols = axisTaps(inW, outW, attrs.alignCorners, attrs.halfPixelCenters);
  let o = 0;
  for (let b = 0; b < batch; b++) {
    const base = b * inH * inW * ch;
    for (let r = 0; r < outH; r++) {
      const top = base + rows.lo[r] * inW * ch;
      const bot = base + rows.hi[r] * inW * ch;
      const fr = rows.frac[r];
      for (let c = 0; c < outW; c++) {
        const l = cols.lo[c] * ch;
        const rt = cols.hi[c] * ch;
        const fc = cols.frac[c];
        const wtl = (1 - fr) * (1 - fc);
        const wtr = (1 - fr) * fc;
        const wbl = fr * (1 - fc);
        const wbr = fr * fc;
        for (let d = 0; d < ch; d++) {
          const g = dy[o++];
          dx[top + l + d] += g * wtl;
          dx[top + rt + d] += g * wtr;
          dx[bot + l + d] += g * wbl;
          dx[bot + rt + d] += g * wbr;
        }
      }
    }
  }
}

/**
 * Walks every output pixel of a resize with its four source taps and applies `op` (simd.wat's channel loop): the
 * forward (`bilerp`, pixels = output) and the gradient (`bilerpGrad`, pixels = dy, image = dx) share the walk.
 * Offsets are bytes; channels a multiple of 4.
 */
function bilinearTapsSimd(
  op: BilerpOp,
  imageOff: number,
  pixelsOff: number,
  shape: number[],
  outH: number,
  outW: number,
  attrs: ResizeAttrs,
): void {
  const [batch, inH, inW, ch] = shape as [number, number, number, number];
  const rows = axisTaps(inH, outH, attrs.alignCorners, attrs.halfPixelCenters);
  const cols = axisTaps(inW, outW, attrs.alignCorners, attrs.halfPixelCenters);
  const px = ch * 4;
  let o = pixelsOff;
  for (let b = 0; b < batch; b++) {
    const base = imageOff + b * inH * inW * px;
    for (let r = 0; r < outH; r++) {
      const top = base + rows.lo[r]! * inW * px;
      const bot = base + rows.hi[r]! * inW * px;
      const fr = rows.frac[r]!;
      for (let c = 0; c < outW; c++, o += px) {
        const l = cols.lo[c]! * px;
        const rt = cols.hi[c]! * px;
        op(o, top + l, top + rt, bot + l, bot + rt, ch, cols.frac[c]!, fr);
      }
    }
  }
}

export const resizeBilinearWasmKernel: KernelFunc = (args) => {
  const backend = args.backend as WasmBackend;
  const { images } = args.inputs as { images: TensorInfo };
  const attrs = args.attrs as unknown as ResizeAttrs;
  const [outH, outW] = attrs.size as [number, number];
  const [batch, , , ch] = images.shape;
  const out = backend.makeOutput([batch, outH, outW, ch], 'float32');
  if (images.dtype !== 'float32')
    throw new Error(`ResizeBilinear on wasm expects float32 images, got ${images.dtype}`);
  const simd = ch! % 4 === 0 ? simdKernels(backend) : null;
  if (simd) {
    bilinearTapsSimd(
      simd.bilerp,
      byteOffset(backend, images),
      byteOffset(backend, out),
      images.shape,
      outH,
      outW,
      attrs,
    );
    return out;
  }
  resizeBilinearForward(f32(backend, images), f32(backend, out), images.shape, outH, outW, attrs);
  return out;
};

export const resizeBilinearGradWasmKernel: KernelFunc = (args) => {
  const backend = args.backend as WasmBackend;
  const { images, dy } = args.inputs as { images: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as ResizeAttrs;
  const dx = backend.makeOutput(images.shape, 'float32');
  const dxValues = f32(backend, dx);
  dxValues.fill(0);
  const simd = images.shape[3]! % 4 === 0 ? simdKernels(backend) : null;
  if (simd) {
    // dx starts zeroed: the gradient accumulates into it.
    bilinearTapsSimd(
      simd.bilerpGrad,
      byteOffset(backend, dx),
      byteOffset(backend, dy),
      images.shape,
      dy.shape[1]!,
      dy.shape[2]!,
      attrs,
    );
    return dx;
  }
  resizeBilinearBackward(f32(backend, dy), dxValues, images.shape, dy.shape[1], dy.shape[2], attrs);
  return dx;
};

interface CpuBackend {
  data: { get: (dataId: object) => { values: Float32Array } };
  makeTensorInfo: (shape: number[], dtype: 'float32', values: Float32Array) => TensorInfo;
}

/** The same gradient for the cpu backend, whose stock kernel has the transposed-shape and half-pixel bugs. */
export const resizeBilinearGradCpuKernel: KernelFunc = (args) => {
  const backend = args.backend as unknown as CpuBackend;
  const { images, dy } = args.inputs as { images: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as ResizeAttrs;
  const dx = new Float32Array(images.shape.reduce((a, b) => a * b, 1));
  resizeBilinearBackward(
    backend.data.get(dy.dataId).values,
    dx,
    images.shape,
    dy.shape[1],
    dy.shape[2],
    attrs,
  );
  return backend.makeTensorInfo(images.shape, 'float32', dx);
};

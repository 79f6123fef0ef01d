/**
 * The tensor operations SegFormer is built from, in NHWC / token-matrix form, each matching its PyTorch
 * counterpart (including gradients).
 */
import { dropoutMultipliers } from '../../engine/dropout-mask.ts';
import { DROPOUT_MULTIPLIERS } from '../../engine/kernels/dropout.ts';
import { GELU, GELU_GRAD } from '../../engine/kernels/gelu.ts';
import { LAYER_NORM, LAYER_NORM_GRAD } from '../../engine/kernels/layer-norm.ts';
import { tf } from '../../engine/tf.ts';

let fusedOps = true;

/**
 * Whether LayerNorm and GELU run as slideseg's fused forward/backward kernels where the backend has them (wasm
 * and cpu after `ready()`); off, they are the plain TF.js compositions below (the reference the tests compare with).
 */
export function setFusedOps(enabled: boolean): void {
  fusedOps = enabled;
}

function fused(kernel: string): boolean {
  return fusedOps && tf.getKernel(kernel, tf.getBackend()) != null;
}

/** y = x @ W + b with W stored [in, out]; x is [rows, in]. */
export function linear(x: tf.Tensor2D, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor2D {
  return tf.fused.matMul({ a: x, b: weight as tf.Tensor2D, bias }) as tf.Tensor2D;
}

/** LayerNorm over the last axis (biased variance, as `nn.LayerNorm`). */
export function layerNorm<T extends tf.Tensor>(x: T, gamma: tf.Tensor, beta: tf.Tensor, eps: number): T {
  if (fused(LAYER_NORM)) return layerNormFused(x, gamma, beta, eps);
  return layerNormComposed(x, gamma, beta, eps);
}

function layerNormFused<T extends tf.Tensor>(x: T, gamma: tf.Tensor, beta: tf.Tensor, eps: number): T {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xi, g, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const [y, mean, invStd] = tf
      .engine()
      .runKernel(LAYER_NORM, { x: xi!, gamma: g!, beta: b! }, { eps }) as tf.Tensor[];
    save([xi!, g!, mean!, invStd!]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sg, sm, si] = saved;
        return tf
          .engine()
          .runKernel(LAYER_NORM_GRAD, { dy, x: sx!, gamma: sg!, mean: sm!, invStd: si! }) as tf.Tensor[];
      },
    };
  });
  return op(x, gamma, beta) as T;
}

function layerNormComposed<T extends tf.Tensor>(x: T, gamma: tf.Tensor, beta: tf.Tensor, eps: number): T {
  const axis = x.rank - 1;
  const mean = tf.mean(x, axis, true);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), axis, true);
  return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), gamma), beta) as T;
}

/** Exact GELU: x * Φ(x) = 0.5 x (1 + erf(x / √2)), as `nn.GELU()` / HF's ACT2FN['gelu']. */
export function gelu<T extends tf.Tensor>(x: T): T {
  if (fused(GELU)) {
    const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const xi = args[0] as tf.Tensor;
      (args[1] as tf.GradSaveFunc)([xi]);
      return {
        value: tf.engine().runKernel(GELU, { x: xi }) as tf.Tensor,
        gradFunc: (dy: tf.Tensor, [sx]: tf.Tensor[]) =>
          tf.engine().runKernel(GELU_GRAD, { dy, x: sx! }) as tf.Tensor,
      };
    });
    return op(x) as T;
  }
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)) as T;
}

/**
 * Interpolation matrix [outSize, inSize] of PyTorch's bilinear resize with align_corners=False
 * (half-pixel centres, source index clamped at 0, neighbours clamped at the last row).
 */
export function bilinearMatrix(inSize: number, outSize: number): Float32Array {
  const m = new Float32Array(outSize * inSize);
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const src = Math.max(0, (o + 0.5) * scale - 0.5);
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const i1 = Math.min(i0 + 1, inSize - 1);
    const w1 = src - i0;
    m[o * inSize + i0] += 1 - w1;
    m[o * inSize + i1] += w1;
  }
  return m;
}

/** Backends on which slideseg registers a ResizeBilinearGrad that honours halfPixelCenters (engine/kernels). */
const RESIZE_GRAD_FIXED = new Set(['wasm', 'cpu']);

/**
 * Bilinear resize of NHWC maps with PyTorch's align_corners=False semantics. The forward pass is TF.js's
 * resizeBilinear with half-pixel centres (identical arithmetic); the gradient is computed here from the
 * interpolation matrices because TF.js's ResizeBilinearGrad ignores halfPixelCenters.
 */
export function resizeBilinear(x: tf.Tensor4D, size: [number, number]): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const [outH, outW] = size;
  if (h === outH && w === outW) return x;
  const resize = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const input = args[0] as tf.Tensor4D;
    const value = tf.image.resizeBilinear(input, size, false, true);
    (args[1] as tf.GradSaveFunc)([input]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, [images]: tf.Tensor[]) => {
        // slideseg's ResizeBilinearGrad kernels (wasm, cpu) honour halfPixelCenters: one adjoint pass.
        if (fused('ResizeBilinearGrad') && RESIZE_GRAD_FIXED.has(tf.getBackend())) {
          return tf
            .engine()
            .runKernel(
              'ResizeBilinearGrad',
              { images: images!, dy },
              { alignCorners: false, halfPixelCenters: true },
            ) as tf.Tensor;
        }
        // dx = Ryᵀ · dy · Rx, applied one axis at a time.
        const rxT = tf.tensor3d(bilinearMatrix(w, outW), [1, outW, w]);
        const alongW = tf.matMul(rxT, tf.reshape(dy, [n * outH, outW, c]), true, false); // [n*outH, w, c]
        const ryT = tf.tensor3d(bilinearMatrix(h, outH), [1, outH, h]);
        const alongH = tf.matMul(ryT, tf.reshape(alongW, [n, outH, w * c]), true, false); // [n, h, w*c]
        return tf.reshape(alongH, [n, h, w, c]);
      },
    };
  });
  return resize(x) as tf.Tensor4D;
}

/**
 * Inverted dropout with a seeded mask (`noiseShape` broadcasts it, e.g. [N, 1, 1] for drop path): exactly
 * `tf.dropout`'s masks and values, with the multipliers drawn by engine/dropout-mask.ts (6× faster than
 * `tf.dropout`'s own draw, which took ~120 ms per step for B0's classifier dropout on a 4-crop shard).
 */
export function dropout<T extends tf.Tensor>(x: T, rate: number, seed: number, noiseShape?: number[]): T {
  if (rate <= 0) return x;
  if (x.dtype !== 'float32') return tf.dropout(x, rate, noiseShape, seed) as T;
  const shape = noiseShape ?? x.shape;
  const multipliers = fused(DROPOUT_MULTIPLIERS)
    ? (tf.engine().runKernel(DROPOUT_MULTIPLIERS, {}, { shape, rate, seed }) as tf.Tensor)
    : tf.tensor(dropoutMultipliers(tf.util.sizeFromShape(shape), rate, seed), shape);
  return tf.mul(x, multipliers) as T;
}

/**
 * Per-kernel timings at SegFormer-B0 training shapes (256x256, batch 2) and decoder inference shapes:
 * our wasm kernels vs the stock tfjs wasm kernel (where tfjs has one) vs the cpu backend. Medians of several runs.
 * Run: `npx tsx bench/kernels.ts` (also part of `npm run bench`).
 */
import { ready, tf } from '../src/engine/index.ts';
import { stockKernel } from '../src/engine/kernels/index.ts';

interface KernelCase {
  name: string;
  kernel: string;
  inputs: Record<string, number[]>;
  attrs: Record<string, unknown>;
}

const pad = (p: number) => [
  [0, 0],
  [p, p],
  [p, p],
  [0, 0],
];

export const KERNEL_CASES: KernelCase[] = [
  {
    name: 'conv 7x7/4 dW (patch embed 1)',
    kernel: 'Conv2DBackpropFilter',
    inputs: { x: [2, 256, 256, 3], dy: [2, 64, 64, 32] },
    attrs: { strides: 4, pad: pad(3), dataFormat: 'NHWC', filterShape: [7, 7, 3, 32] },
  },
  {
    name: 'conv 3x3/2 dW (patch embed 2)',
    kernel: 'Conv2DBackpropFilter',
    inputs: { x: [2, 64, 64, 32], dy: [2, 32, 32, 64] },
    attrs: { strides: 2, pad: pad(1), dataFormat: 'NHWC', filterShape: [3, 3, 32, 64] },
  },
  {
    name: 'conv 3x3/2 dX (patch embed 2)',
    kernel: 'Conv2DBackpropInput',
    inputs: { dy: [2, 32, 32, 64], filter: [3, 3, 32, 64] },
    attrs: { strides: 2, pad: pad(1), dataFormat: 'NHWC', inputShape: [2, 64, 64, 32] },
  },
  {
    name: 'conv 8x8/8 dW (reduction 1)',
    kernel: 'Conv2DBackpropFilter',
    inputs: { x: [2, 64, 64, 32], dy: [2, 8, 8, 32] },
    attrs: { strides: 8, pad: 'valid', dataFormat: 'NHWC', filterShape: [8, 8, 32, 32] },
  },
  {
    name: 'conv 8x8/8 dX (reduction 1)',
    kernel: 'Conv2DBackpropInput',
    inputs: { dy: [2, 8, 8, 32], filter: [8, 8, 32, 32] },
    attrs: { strides: 8, pad: 'valid', dataFormat: 'NHWC', inputShape: [2, 64, 64, 32] },
  },
  {
    name: 'conv 1x1 dW (decoder fuse, 32x32 map)',
    kernel: 'Conv2DBackpropFilter',
    inputs: { x: [1, 32, 32, 1024], dy: [1, 32, 32, 256] },
    attrs: { strides: 1, pad: 'valid', dataFormat: 'NHWC', filterShape: [1, 1, 1024, 256] },
  },
  {
    name: 'depthwise 3x3 dW (Mix-FFN 1)',
    kernel: 'DepthwiseConv2dNativeBackpropFilter',
    inputs: { x: [2, 64, 64, 128], dy: [2, 64, 64, 128] },
    attrs: { strides: 1, pad: 'same', dilations: 1, filterShape: [3, 3, 128, 1] },
  },
  {
    name: 'depthwise 3x3 dX (Mix-FFN 1)',
    kernel: 'DepthwiseConv2dNativeBackpropInput',
    inputs: { dy: [2, 64, 64, 128], filter: [3, 3, 128, 1] },
    attrs: { strides: 1, pad: 'same', dilations: 1, inputShape: [2, 64, 64, 128] },
  },
  {
    name: 'matmul [2,4096,32]x[32,128] (Mix-FFN fc1)',
    kernel: 'BatchMatMul',
    inputs: { a: [2, 4096, 32], b: [1, 32, 128] },
    attrs: { transposeA: false, transposeB: false },
  },
  {
    name: 'matmul x^T dy [8192,32]^T[8192,128] (fc1 dW)',
    kernel: 'BatchMatMul',
    inputs: { a: [1, 8192, 32], b: [1, 8192, 128] },
    attrs: { transposeA: true, transposeB: false },
  },
  {
    name: 'matmul Q K^T [2,4096,32]x[2,64,32]^T',
    kernel: 'BatchMatMul',
    inputs: { a: [2, 4096, 32], b: [2, 64, 32] },
    attrs: { transposeA: false, transposeB: true },
  },
  {
    name: 'resize 64x64x256 -> 128x128 (decoder, 512 input)',
    kernel: 'ResizeBilinear',
    inputs: { images: [1, 64, 64, 256] },
    attrs: { alignCorners: false, halfPixelCenters: true, size: [128, 128] },
  },
  {
    name: 'resize grad 32x32x256 <- 64x64 (decoder, training)',
    kernel: 'ResizeBilinearGrad',
    inputs: { images: [2, 32, 32, 256], dy: [2, 64, 64, 256] },
    attrs: { alignCorners: false, halfPixelCenters: true },
  },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Median ms of `reps` runs of one kernel function on the active backend (after one warm-up). */
function timeKernel(c: KernelCase, reps: number, stock: boolean, warmUp = true): number | undefined {
  const kernel = stock ? stockKernel(c.kernel, 'wasm') : tf.getKernel(c.kernel, tf.getBackend());
  if (!kernel) return undefined;
  const inputs: Record<string, tf.Tensor> = {};
  for (const [k, s] of Object.entries(c.inputs)) inputs[k] = tf.randomUniform(s, -1, 1);
  const backend = tf.backend();
  const once = () => {
    const out = kernel.kernelFunc({ inputs, backend, attrs: c.attrs as never }) as tf.TensorInfo;
    backend.readSync(out.dataId);
    backend.disposeData(out.dataId);
  };
  const times: number[] = [];
  if (warmUp) once();
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    once();
    times.push(performance.now() - t0);
  }
  tf.dispose(Object.values(inputs));
  return median(times);
}

export interface KernelTiming {
  name: string;
  kernel: string;
  wasm: number;
  stockWasm?: number;
  cpu: number;
}

export async function benchKernels(reps = 5): Promise<KernelTiming[]> {
  const rows: KernelTiming[] = [];
  for (const c of KERNEL_CASES) {
    await ready('wasm');
    const wasm = timeKernel(c, reps, false) as number;
    const stockWasm = timeKernel(c, Math.min(reps, 3), true);
    await ready('cpu');
    // The cpu backend has no per-shape setup to warm up, and is slow: one run.
    const cpu = timeKernel(c, 1, false, false) as number;
    rows.push({ name: c.name, kernel: c.kernel, wasm, stockWasm, cpu });
    process.stderr.write(`  ${c.name}: wasm ${wasm.toFixed(1)} ms\n`);
  }
  return rows;
}

export function kernelTable(rows: KernelTiming[]): string {
  const f = (x?: number) => (x == null ? '—' : x.toFixed(1));
  const lines = [
    '| kernel | shape | wasm (ours) ms | stock wasm ms | cpu ms | cpu / wasm |',
    '|---|---|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.kernel} | ${r.name} | ${f(r.wasm)} | ${f(r.stockWasm)} | ${f(r.cpu)} | ${(r.cpu / r.wasm).toFixed(1)}x |`,
    );
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(kernelTable(await benchKernels()));
}

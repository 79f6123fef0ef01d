/**
 * Where a training step's time goes: one SegFormer training step (the trainer's real shard code, Dice + CE,
 * AdamW) on the wasm backend with every wasm kernel timed, grouped by phase (data, forward, loss, backward,
 * thread synchronisation, optimizer); FLOPs of every convolution and matrix product (their gradients too) counted
 * from the kernels' shapes, and GFLOP/s per phase. Then the same model's forward on ONNX Runtime (CPU EP, its own
 * per-node profile), for the engine-vs-engine comparison.
 *
 *   npx tsx bench/train-profile.ts [--batch 8] [--size 256] [--threads 2] [--steps 2] [--preset b0]
 *                                  [--out out/train-profile] [--no-ort]
 *
 * With --threads 2 the main thread computes its half of the batch while the worker thread computes the other
 * half (as `bench/train-step.ts` and the trainer do); the kernel table is the main thread's (the worker runs the
 * same kernels on the same shapes). Kernel times are self times: a kernel that calls another (e.g. _FusedMatMul's
 * bias Add) is charged only for its own part. "engine overhead" is the phase's wall time not spent in kernels
 * (TF.js tape and bookkeeping, JS between kernels, tensor allocation).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { tuneMalloc } from '../src/core/malloc-tuning.ts';
import { ready, tf } from '../src/engine/index.ts';
import type { SegformerPresetName } from '../src/models/segformer/config.ts';
import { Segformer, saveSegformer, segformerPreset } from '../src/models/segformer/index.ts';
import { exportSegformerOnnx } from '../src/onnx/index.ts';
import { AdamW } from '../src/optim/adamw.ts';
import type { Sample } from '../src/patching/augment.ts';
import { DEFAULTS, type TrainConfig } from '../src/train/config.ts';
import { buildLoss } from '../src/train/loss.ts';
import { GradientWorkers } from '../src/train/parallel.ts';
import { type ShardContext, shardContextKeys, shardGradients } from '../src/train/step.ts';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '8' },
    size: { type: 'string', default: '256' },
    threads: { type: 'string', default: '2' },
    steps: { type: 'string', default: '2' },
    preset: { type: 'string', default: 'b0' },
    out: { type: 'string', default: 'out/train-profile' },
    'no-ort': { type: 'boolean', default: false },
    'by-shape': { type: 'boolean', default: false },
  },
});
const batch = Number(values.batch);
const size = Number(values.size);
const threads = Number(values.threads);
const steps = Number(values.steps);
const preset = values.preset as SegformerPresetName;
for (const [name, v] of [
  ['--batch', batch],
  ['--size', size],
  ['--threads', threads],
  ['--steps', steps],
] as const) {
  if (!Number.isInteger(v) || v < 1) {
    process.stderr.write(`train-profile: ${name} must be a positive integer\n`);
    process.exit(2);
  }
}
const outDir = resolve(values.out!);
// As the CLI and bench/train-step.ts do (core/malloc-tuning.ts): without it every fresh multi-MB array of a step
// pays its page faults again. SLIDESEG_MALLOC_TUNING=0 measures glibc's defaults.
process.stderr.write(`glibc malloc tuning (as the CLI): ${tuneMalloc() ? 'on' : 'off'}\n`);
/** With --by-shape, kernels are keyed by name and input shapes (which call sites cost what). */
const byShape = values['by-shape'] === true;

// ---- kernel timing -----------------------------------------------------------------------------------------

type Phase = 'data' | 'forward' | 'loss' | 'backward' | 'sync' | 'optimizer';
const PHASES: Phase[] = ['data', 'forward', 'loss', 'backward', 'sync', 'optimizer'];
let phase: Phase = 'data';
let phaseStart = performance.now();
let recording = false;
const phaseWall = new Map<Phase, number>();

function enter(next: Phase): void {
  const now = performance.now();
  if (recording) phaseWall.set(phase, (phaseWall.get(phase) ?? 0) + now - phaseStart);
  phase = next;
  phaseStart = now;
}

interface KernelRow {
  count: number;
  ms: number;
  flops: number;
}
/** phase -> kernel name -> totals */
const table = new Map<Phase, Map<string, KernelRow>>();
let depth = 0;
let childMs = 0;

function convFlops(xShape: number[], filterShape: number[], attrs: NamedAttrMap, depthwise: boolean): number {
  const c = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number,
    (attrs.dilations as number) ?? 1,
    attrs.pad as 'same',
    attrs.dimRoundingMode as 'floor' | undefined,
    depthwise,
  );
  const perPixel = depthwise
    ? c.filterHeight * c.filterWidth * c.outChannels
    : c.filterHeight * c.filterWidth * c.inChannels * c.outChannels;
  return 2 * c.batchSize * c.outHeight * c.outWidth * perPixel;
}

/** Multiply-add FLOPs (×2) of the convolutions and matrix products; 0 for everything else. */
function kernelFlops(name: string, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): number {
  switch (name) {
    case 'BatchMatMul':
    case '_FusedMatMul': {
      const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
      const ra = a.shape.length;
      const m = attrs.transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
      const k = attrs.transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
      const n = attrs.transposeB ? b.shape[b.shape.length - 2]! : b.shape[b.shape.length - 1]!;
      const outer = Math.max(
        tf.util.sizeFromShape(a.shape.slice(0, -2)),
        tf.util.sizeFromShape(b.shape.slice(0, -2)),
      );
      return 2 * outer * m * n * k;
    }
    case 'Conv2D':
    case 'FusedConv2D':
      return convFlops(inputs.x!.shape, inputs.filter!.shape, attrs, false);
    case 'DepthwiseConv2dNative':
    case 'FusedDepthwiseConv2D':
      return convFlops(inputs.x!.shape, inputs.filter!.shape, attrs, true);
    case 'Conv2DBackpropInput':
      return convFlops(attrs.inputShape as number[], inputs.filter!.shape, attrs, false);
    case 'Conv2DBackpropFilter':
      return convFlops(inputs.x!.shape, attrs.filterShape as number[], attrs, false);
    case 'DepthwiseConv2dNativeBackpropInput':
      return convFlops(attrs.inputShape as number[], inputs.filter!.shape, attrs, true);
    case 'DepthwiseConv2dNativeBackpropFilter':
      return convFlops(inputs.x!.shape, attrs.filterShape as number[], attrs, true);
    default:
      return 0;
  }
}

/** Re-registers every wasm kernel with a timing wrapper (self time, FLOPs of outermost calls only). */
function instrumentWasmKernels(): void {
  const configs: KernelConfig[] = tf.getKernelsForBackend('wasm');
  for (const config of configs) {
    const { kernelName, kernelFunc } = config;
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({
      ...config,
      kernelFunc: (args) => {
        if (!recording) return kernelFunc(args);
        const outerChild = childMs;
        childMs = 0;
        depth++;
        const t0 = performance.now();
        try {
          return kernelFunc(args);
        } finally {
          const total = performance.now() - t0;
          depth--;
          const self = total - childMs;
          childMs = outerChild + total;
          const rows = table.get(phase) ?? new Map<string, KernelRow>();
          table.set(phase, rows);
          const key = byShape
            ? `${kernelName} ${Object.values(args.inputs as Record<string, TensorInfo>)
                .map((t) => `[${t?.shape}]`)
                .join(' ')}${args.attrs?.transposeA ? ' tA' : ''}${args.attrs?.transposeB ? ' tB' : ''}${
                args.attrs?.perm ? ` perm ${args.attrs.perm}` : ''
              }`
            : kernelName;
          const row = rows.get(key) ?? { count: 0, ms: 0, flops: 0 };
          row.count++;
          row.ms += self;
          if (depth === 0)
            row.flops += kernelFlops(kernelName, args.inputs as Record<string, TensorInfo>, args.attrs ?? {});
          rows.set(key, row);
        }
      },
    });
  }
}

// ---- the training step -------------------------------------------------------------------------------------

function syntheticSamples(n: number, w: number): Sample[] {
  return Array.from({ length: n }, (_, k) => {
    const image = new Uint8Array(w * w * 3);
    const mask = new Uint8Array(w * w);
    for (let i = 0; i < w * w; i++) {
      const x = i % w;
      const y = Math.floor(i / w);
      const inside = ((x + 37 * k) % 64) ** 2 + ((y + 11 * k) % 64) ** 2 < 400;
      mask[i] = inside ? 1 : 0;
      image.set(inside ? [90, 40, 140] : [230, 180, 210], i * 3);
    }
    return { image, mask, width: w, height: w };
  });
}

const backend = await ready('wasm');
const cfg: TrainConfig = {
  ...DEFAULTS,
  model: { preset, numLabels: 2 },
  augment: { ...DEFAULTS.augment, crop: size },
  loss: [
    { name: 'dice', weight: 1 },
    { name: 'ce', weight: 1 },
  ],
  batchSize: batch,
  optim: { ...DEFAULTS.optim, accumulate: 1 },
  workers: threads,
};
const samples = syntheticSamples(4, Math.max(size, 2 * size));
const model = new Segformer(segformerPreset(preset, { numLabels: 2 }), { seed: 0 });
const baseLoss = buildLoss(cfg.loss, 2, 255);
const ctx: ShardContext = {
  model,
  samples,
  cfg,
  loss: (pred, target) => {
    enter('loss');
    const l = baseLoss(pred, target);
    enter('backward');
    return l;
  },
  ...shardContextKeys(model),
};
const forward = model.forward.bind(model);
model.forward = (x, opts) => {
  enter('forward');
  return forward(x, opts);
};
const opt = new AdamW([{ params: new Map(ctx.keys.map((k, i) => [k, ctx.variables[i]!])) }], { lr: 6e-5 });
const workers =
  threads > 1
    ? await GradientWorkers.start(threads - 1, cfg, samples, ctx.keys, ctx.variables, backend)
    : null;
instrumentWasmKernels();

const stepMs: number[] = [];
for (let step = 0; step <= steps; step++) {
  recording = step > 0; // step 0 warms up kernels, XNNPACK operators and heaps
  const t0 = performance.now();
  enter('sync');
  workers?.publish(ctx.variables);
  const others = workers?.run(step, 0, threads);
  enter('data');
  const own = shardGradients(ctx, step, 0, 0, threads);
  enter('sync');
  const grads = own.grads;
  if (others && workers) {
    await others;
    workers.collect(grads);
  }
  enter('optimizer');
  opt.step(grads);
  for (const g of grads.values()) g.dispose();
  enter('data');
  const ms = performance.now() - t0;
  if (recording) stepMs.push(ms);
  process.stderr.write(`  step ${step}: ${ms.toFixed(0)} ms${recording ? '' : ' (warm-up)'}\n`);
}
recording = false;
await workers?.close();

// ---- report ------------------------------------------------------------------------------------------------

const perStep = (x: number) => x / steps;
const stepMean = stepMs.reduce((a, b) => a + b, 0) / stepMs.length;
const shardBatch = Math.ceil(batch / threads);

interface Row {
  phase: Phase;
  kernel: string;
  count: number;
  ms: number;
  share: number;
  gflop: number;
  gflops: number | null;
}
const rows: Row[] = [];
const phaseRows: {
  phase: Phase;
  wallMs: number;
  kernelMs: number;
  overheadMs: number;
  share: number;
  gflop: number;
  gflops: number | null;
}[] = [];
for (const p of PHASES) {
  const wall = perStep(phaseWall.get(p) ?? 0);
  const kernels = table.get(p) ?? new Map<string, KernelRow>();
  let kernelMs = 0;
  let flops = 0;
  for (const [kernel, r] of kernels) {
    kernelMs += r.ms;
    flops += r.flops;
    rows.push({
      phase: p,
      kernel,
      count: r.count / steps,
      ms: perStep(r.ms),
      share: perStep(r.ms) / stepMean,
      gflop: perStep(r.flops) / 1e9,
      gflops: r.flops > 0 ? r.flops / 1e6 / r.ms : null,
    });
  }
  phaseRows.push({
    phase: p,
    wallMs: wall,
    kernelMs: perStep(kernelMs),
    overheadMs: Math.max(0, wall - perStep(kernelMs)),
    share: wall / stepMean,
    gflop: perStep(flops) / 1e9,
    gflops: flops > 0 && wall > 0 ? perStep(flops) / 1e6 / wall : null,
  });
}
rows.sort((a, b) => b.ms - a.ms);

// ---- ONNX Runtime forward ----------------------------------------------------------------------------------

interface OrtResult {
  forwardMs: number;
  /** Wall time of a profiled run (the profiler slows ORT down). */
  profiledMs: number;
  gflop: number;
  gflops: number;
  ops: { op: string; count: number; ms: number; share: number }[];
}

async function ortForward(): Promise<OrtResult> {
  // FLOPs of the same forward (eval mode, folded decoder as the export) counted on the TF.js kernels.
  table.clear();
  phase = 'forward';
  recording = true;
  const x = tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  tf.dispose(model.forward(x, { training: false }).logits);
  recording = false;
  let fwdFlops = 0;
  for (const r of table.get('forward')?.values() ?? []) fwdFlops += r.flops;
  x.dispose();

  const dir = mkdtempSync(join(tmpdir(), 'slideseg-profile-'));
  try {
    await saveSegformer(model, join(dir, 'model'));
    // Folded decoder: the same function and FLOPs as the TF.js forward the FLOPs are counted on.
    await exportSegformerOnnx(join(dir, 'model'), join(dir, 'model.onnx'), { foldDecoder: true });
    const options: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      executionProviders: ['cpu'],
    };
    const pixels = new Float32Array(batch * 3 * size * size).map((_, i) => Math.sin(i));
    const feeds = (s: ort.InferenceSession) => ({
      [s.inputNames[0]!]: new ort.Tensor('float32', pixels, [batch, 3, size, size]),
    });
    // Timed without the profiler (it costs time), then profiled runs for the per-op split.
    const plain = await ort.InferenceSession.create(join(dir, 'model.onnx'), options);
    await plain.run(feeds(plain));
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await plain.run(feeds(plain));
      times.push(performance.now() - t0);
    }
    await plain.release();
    const forwardMs = times.sort((a, b) => a - b)[1]!;
    const profiled = await ort.InferenceSession.create(join(dir, 'model.onnx'), {
      ...options,
      enableProfiling: true,
      profileFilePrefix: join(dir, 'ort-profile'),
    });
    const runsProfiled = 2;
    const tp = performance.now();
    for (let i = 0; i < runsProfiled; i++) await profiled.run(feeds(profiled));
    const profiledMs = (performance.now() - tp) / runsProfiled;
    profiled.endProfiling();
    await profiled.release();
    // onnxruntime-node writes `<prefix>_<timestamp>.json` and does not return the name.
    const name = readdirSync(dir).find((f) => f.startsWith('ort-profile') && f.endsWith('.json'));
    if (!name) throw new Error(`ONNX Runtime wrote no profile in ${dir}`);
    const file = join(dir, name);
    const events = JSON.parse(readFileSync(file, 'utf8')) as {
      cat: string;
      name: string;
      dur: number;
      args?: { op_name?: string };
    }[];
    const byOp = new Map<string, { count: number; us: number }>();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !e.args?.op_name) continue;
      const r = byOp.get(e.args.op_name) ?? { count: 0, us: 0 };
      r.count++;
      r.us += e.dur;
      byOp.set(e.args.op_name, r);
    }
    // Node times overlap (intra-op threads) and include the profiler's own cost: shares are of their sum.
    const totalUs = [...byOp.values()].reduce((a, r) => a + r.us, 0);
    const ops = [...byOp]
      .map(([op, r]) => ({
        op,
        count: r.count / runsProfiled,
        ms: r.us / 1000 / runsProfiled,
        share: r.us / totalUs,
      }))
      .sort((a, b) => b.ms - a.ms);
    return { forwardMs, profiledMs, gflop: fwdFlops / 1e9, gflops: fwdFlops / 1e6 / forwardMs, ops };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ortResult = values['no-ort'] ? null : await ortForward();
opt.dispose();
model.dispose();

const fmt = (x: number | null, d = 1) => (x == null ? '' : x.toFixed(d));
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const lines: string[] = [];
lines.push(
  `# Training step profile: SegFormer-${preset.toUpperCase()}, batch ${batch}, ${size}×${size}, ` +
    `${threads} gradient thread(s), wasm backend`,
  '',
  `Step: ${stepMean.toFixed(0)} ms (mean of ${steps} after one warm-up step; per-thread shard: ${shardBatch} crops).`,
  `Kernel times are the main thread's (its shard of ${shardBatch}); FLOPs = 2 × multiply-adds of convolutions and matrix products.`,
  '',
  '## Phases (main thread)',
  '',
  '| phase | wall ms | in kernels ms | engine overhead ms | share of step | GFLOP | GFLOP/s |',
  '|---|---:|---:|---:|---:|---:|---:|',
  ...phaseRows.map(
    (r) =>
      `| ${r.phase} | ${fmt(r.wallMs)} | ${fmt(r.kernelMs)} | ${fmt(r.overheadMs)} | ${pct(r.share)} | ${fmt(r.gflop, 2)} | ${fmt(r.gflops)} |`,
  ),
  '',
  '## Kernels (self time per step, main thread)',
  '',
  '| phase | kernel | calls | ms | share of step | GFLOP | GFLOP/s |',
  '|---|---|---:|---:|---:|---:|---:|',
  ...rows
    .filter((r) => r.ms >= 0.05)
    .map(
      (r) =>
        `| ${r.phase} | ${r.kernel} | ${fmt(r.count, 0)} | ${fmt(r.ms)} | ${pct(r.share)} | ${fmt(r.gflop, 2)} | ${fmt(r.gflops)} |`,
    ),
);
if (ortResult) {
  lines.push(
    '',
    `## ONNX Runtime forward (CPU EP, ${threads} intra-op threads, batch ${batch}, ${size}×${size}, folded decoder)`,
    '',
    `Forward: ${ortResult.forwardMs.toFixed(0)} ms, ${ortResult.gflop.toFixed(2)} GFLOP → ${ortResult.gflops.toFixed(1)} GFLOP/s ` +
      `(FLOPs counted on the TF.js eval forward of the same model).`,
    '',
    `Per-op times from ORT's profiler (profiled runs: ${ortResult.profiledMs.toFixed(0)} ms each; node times summed over threads, share of their sum):`,
    '',
    '| op | nodes run | ms | share |',
    '|---|---:|---:|---:|',
    ...ortResult.ops
      .filter((r) => r.ms >= 0.05)
      .map((r) => `| ${r.op} | ${fmt(r.count, 0)} | ${fmt(r.ms)} | ${pct(r.share)} |`),
  );
}
const markdown = `${lines.join('\n')}\n`;
console.log(`\n${markdown}`);
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'train-profile.md'), markdown);
writeFileSync(
  join(outDir, 'train-profile.json'),
  `${JSON.stringify(
    {
      preset,
      batch,
      size,
      threads,
      steps,
      stepMs: stepMean,
      stepTimes: stepMs,
      phases: phaseRows,
      kernels: rows,
      ort: ortResult,
    },
    null,
    1,
  )}\n`,
);
process.stderr.write(`wrote ${join(outDir, 'train-profile.md')} and train-profile.json\n`);

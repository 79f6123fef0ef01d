/**
 * SegFormer inference speed: the slideseg ONNX export on onnxruntime-node (CPU EP) vs PyTorch eager
 * (bench/onnx_torch.py, Debian python3-torch) on the same machine, same input, same thread count, in one run.
 * Also checks that both give the same logits (max abs difference).
 *
 * usage: npx tsx bench/onnx-segformer.ts [--model DIR] [--size 512] [--batch 1] [--runs 10] [--warmup 2]
 *                                        [--threads N] [--fp16] [--no-torch]
 * Default model: the MiT-B0 fixture checkpoint (../shared/fixtures/segformer/segformer-b0, 256-d decoder).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readNpy, writeNpy } from '../src/io/npy.ts';
import { exportSegformerOnnx, OnnxSegmenter } from '../src/onnx/index.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: resolve(root, '../shared/fixtures/segformer/segformer-b0') },
    size: { type: 'string', default: '512' },
    batch: { type: 'string', default: '1' },
    runs: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    threads: { type: 'string', default: String(availableParallelism()) },
    fp16: { type: 'boolean', default: false },
    'no-torch': { type: 'boolean', default: false },
  },
});
const [size, batch, runs, warmup, threads] = [
  values.size,
  values.batch,
  values.runs,
  values.warmup,
  values.threads,
].map(Number) as [number, number, number, number, number];

/** Deterministic pixel values in the range ImageNet normalisation produces. */
function randomPixels(n: number, seed = 1234): Float32Array {
  const out = new Float32Array(n);
  let state = seed >>> 0;
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state / 2 ** 32) * 4.4 - 2.1;
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Median ms of `runs` timed inferences after `warmup` untimed ones; returns the last logits too. */
async function timeOrt(label: string, onnxPath: string, pixels: Float32Array, dims: number[]) {
  const seg = await OnnxSegmenter.load(onnxPath, { device: 'cpu', intraOpThreads: threads });
  const times: number[] = [];
  let logits = await seg.run(pixels, dims);
  for (let i = 0; i < warmup + runs; i++) {
    const start = performance.now();
    logits = await seg.run(pixels, dims);
    if (i >= warmup) times.push(performance.now() - start);
    process.stderr.write(
      `\r${label} ${i + 1}/${warmup + runs} (${(performance.now() - start).toFixed(0)} ms)   `,
    );
  }
  process.stderr.write('\n');
  await seg.release();
  return { ms: median(times), logits: logits.data };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const work = mkdtempSync(join(tmpdir(), 'slideseg-bench-onnx-'));
try {
  const onnxPath = join(work, 'model.onnx');
  const foldedPath = join(work, 'model-folded.onnx');
  const exported = await exportSegformerOnnx(values.model, onnxPath, { fp16: values.fp16 });
  await exportSegformerOnnx(values.model, foldedPath, { fp16: values.fp16, foldDecoder: true });
  const dims = [batch, 3, size, size];
  const pixels = randomPixels(dims.reduce((a, b) => a * b, 1));
  const inputPath = join(work, 'pixel_values.npy');
  await writeNpy(inputPath, { dtype: 'float32', shape: dims, data: pixels });

  const ort = await timeOrt('ORT', onnxPath, pixels, dims);
  const folded = await timeOrt('ORT folded decoder', foldedPath, pixels, dims);
  const ortMs = ort.ms;

  let torch: { median_ms: number; threads: number; torch: string } | undefined;
  let maxAbs: number | undefined;
  if (!values['no-torch']) {
    process.stderr.write('PyTorch eager (bench/onnx_torch.py)...\n');
    const torchOut = join(work, 'torch_logits.npy');
    const args = [join(root, 'bench/onnx_torch.py'), values.model, inputPath, torchOut];
    const proc = spawnSync(
      '/usr/bin/python3',
      [...args, '--runs', String(runs), '--warmup', String(warmup), '--threads', String(threads)],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    if (proc.status !== 0) throw new Error(`bench/onnx_torch.py failed (exit ${proc.status})`);
    torch = JSON.parse(proc.stdout.trim().split('\n').at(-1)!);
    const reference = (await readNpy(torchOut)).data as Float32Array;
    maxAbs = Math.max(maxAbsDiff(reference, ort.logits), maxAbsDiff(reference, folded.logits));
  }

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(
    `SegFormer ${values.model.split('/').at(-1)} (${exported.parameters.toLocaleString('en')} parameters${values.fp16 ? ', fp16 weights' : ''})`,
  );
  console.log(`input [${dims}], ${threads} threads, ${cpu}, median of ${runs} runs after ${warmup} warm-up`);
  console.log(`  onnxruntime-node CPU EP : ${ortMs.toFixed(1)} ms`);
  console.log(`  same, --fold-decoder    : ${folded.ms.toFixed(1)} ms`);
  if (torch) {
    console.log(
      `  PyTorch ${torch.torch} eager   : ${torch.median_ms.toFixed(1)} ms  (${(torch.median_ms / ortMs).toFixed(2)}× ORT)`,
    );
    console.log(`  logits max |ORT - PyTorch| (both graphs) = ${maxAbs!.toExponential(2)}`);
  }
  console.log(
    JSON.stringify({
      bench: 'onnx-segformer',
      size,
      batch,
      threads,
      ort_ms: ortMs,
      ort_folded_ms: folded.ms,
      torch_ms: torch?.median_ms ?? null,
      max_abs: maxAbs ?? null,
    }),
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}

/**
 * `npm run bench`: SegFormer-B0 on TF.js (wasm, cpu) next to PyTorch eager on the same machine in the same run,
 * plus the per-kernel table of our wasm training kernels. Each TF.js backend runs in its own process so that
 * neither inherits the other's heap. Progress goes to stderr, the tables to stdout (markdown).
 *
 *   npm run bench                      # everything
 *   npm run bench -- --runs 3 --cpu-runs 1 --skip-kernels --backends wasm --profile
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchKernels, kernelTable } from './kernels.ts';
import type { SegformerTiming } from './segformer.ts';

const here = dirname(fileURLToPath(import.meta.url));

interface TorchTiming {
  torch: string;
  threads: number;
  parameters: number;
  forward_512_b1_ms: number;
  train_step_256_b2_ms: number;
}

function lastJsonLine<T>(what: string, stdout: string): T {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`${what}: expected a JSON line on stdout, got: ${line.slice(0, 200)}`);
  }
}

function run<T>(what: string, cmd: string, args: string[]): T {
  process.stderr.write(`[bench] ${what}: ${cmd} ${args.join(' ')}\n`);
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 24,
  });
  if (r.error) throw new Error(`${what}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${what}: exited with status ${r.status}`);
  return lastJsonLine<T>(what, r.stdout);
}

function torchTiming(threads: number, runs: number): TorchTiming | undefined {
  try {
    return run<TorchTiming>(`PyTorch ${threads} thread(s)`, '/usr/bin/python3', [
      join(here, 'segformer_torch.py'),
      '--threads',
      String(threads),
      '--runs',
      String(runs),
    ]);
  } catch (e) {
    process.stderr.write(`[bench] PyTorch unavailable (${(e as Error).message}); install python3-torch\n`);
    return undefined;
  }
}

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    'cpu-runs': { type: 'string', default: '1' },
    backends: { type: 'string', default: 'wasm,cpu' },
    'skip-kernels': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const cpuRuns = Number(values['cpu-runs']);
if (!(runs >= 1 && cpuRuns >= 1)) throw new Error('bench/run.ts: --runs and --cpu-runs must be >= 1');

const torch2 = torchTiming(2, runs);
const torch1 = torchTiming(1, runs);
const tfjs: SegformerTiming[] = [];
for (const backend of (values.backends as string).split(',')) {
  const args = ['--import', 'tsx', join(here, 'segformer.ts'), '--backend', backend];
  args.push('--runs', String(backend === 'cpu' ? cpuRuns : runs));
  if (values.profile && backend === 'wasm') args.push('--profile');
  if (backend === 'cpu') args.push('--no-warmup');
  tfjs.push(run<SegformerTiming>(`TF.js ${backend}`, process.execPath, args));
}

const ms = (x?: number) => (x == null ? '—' : x.toFixed(0));
const ratio = (x?: number, ref?: number) => (x == null || ref == null ? '—' : `${(x / ref).toFixed(2)}x`);
const lines = [
  '## SegFormer MiT-B0 (3.7M parameters, 2 labels): median ms',
  '',
  '| implementation | forward 512x512 b1 | vs torch 2t | train step 256x256 b2 | vs torch 2t |',
  '|---|---:|---:|---:|---:|',
];
const ref = torch2;
for (const t of [torch2, torch1]) {
  if (!t) continue;
  lines.push(
    `| PyTorch ${t.torch} eager, ${t.threads} thread(s) | ${ms(t.forward_512_b1_ms)} | ${ratio(t.forward_512_b1_ms, ref?.forward_512_b1_ms)} | ` +
      `${ms(t.train_step_256_b2_ms)} | ${ratio(t.train_step_256_b2_ms, ref?.train_step_256_b2_ms)} |`,
  );
}
for (const t of tfjs) {
  lines.push(
    `| TF.js ${t.backend} (folded decoder, default) | ${ms(t.forward_512_b1_ms)} | ${ratio(t.forward_512_b1_ms, ref?.forward_512_b1_ms)} | ` +
      `${ms(t.train_step_256_b2_ms)} | ${ratio(t.train_step_256_b2_ms, ref?.train_step_256_b2_ms)} |`,
  );
  lines.push(
    `| TF.js ${t.backend} (decoder layer by layer) | ${ms(t.forward_512_b1_unfolded_ms)} | ${ratio(t.forward_512_b1_unfolded_ms, ref?.forward_512_b1_ms)} | | |`,
  );
}
lines.push(
  '',
  'TF.js wasm runs on one thread in Node (tfjs reports no wasm multithread support there); PyTorch uses the threads shown.',
  "Debian's python3-torch uses the system libblas.so.3: with only the reference BLAS installed its matmuls are slow;",
  'install libopenblas0-pthread (apt) before comparing, as the figures in the closing notes did.',
);
for (const t of tfjs) {
  if (!t.profile) continue;
  for (const [task, top] of Object.entries(t.profile)) {
    lines.push(
      '',
      `### ${t.backend} ${task}: kernels taking the most time (tf.profile, one run)`,
      '',
      '| kernel | ms | calls |',
      '|---|---:|---:|',
    );
    for (const k of top) lines.push(`| ${k.kernel} | ${k.ms} | ${k.calls} |`);
  }
}
console.log(lines.join('\n'));

if (!values['skip-kernels']) {
  process.stderr.write('[bench] kernels\n');
  console.log(
    `\n## Training kernels (src/engine/kernels) at SegFormer-B0 shapes: median ms\n\n${kernelTable(await benchKernels())}`,
  );
}

/**
 * `eval-encoder` for classification, following kaiko-ai/eva: embeddings of a frozen encoder computed once
 * (cached), a probe trained N times with different seeds, and `results.json` in eva's layout —
 * `{ metrics: { val: [{ 'val/<metric>': { mean, stdev, values } }], test: [...] } }` with the sample standard
 * deviation (Python's `statistics.stdev`, 0 for one run) — plus the per-run details.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../core/atomic-write.ts';
import { ready } from '../engine/index.ts';
import type { ClassificationMetrics } from '../metrics/index.ts';
import { mixSeed } from '../patching/random.ts';
import { loadClassificationDataset, type SampleRef, SPLITS, type Split } from './dataset.ts';
import { embedSplits } from './embeddings.ts';
import { type ImageEncoder, openEncoder, type Pooling } from './encoder.ts';
import { type ProbeOptions, type ProbeRun, trainProbe } from './probe.ts';

export interface EvalEncoderOptions {
  /** A class-folder tree or a CSV manifest. */
  data: string;
  /** An .onnx file or a SegFormer/MiT folder; or an encoder object (tests, custom encoders). */
  encoder: string | ImageEncoder;
  out: string;
  /** Where embeddings/ and manifest.json live (default: out). */
  cache?: string;
  pooling?: Pooling;
  /** Resize patches to size×size before embedding. */
  size?: number;
  runs?: number;
  seed?: number;
  valFraction?: number;
  testFraction?: number;
  probe?: Omit<ProbeOptions, 'seed'>;
  quiet?: boolean;
}

export interface Statistic {
  mean: number | null;
  stdev: number | null;
  values: (number | null)[];
}

export interface EvalEncoderResults {
  metrics: { val: Record<string, Statistic>[]; test: Record<string, Statistic>[] };
  encoder: { describe: string; hash: string };
  dataset: { source: string; classes: string[]; counts: Record<Split, number> };
  cache: { dir: string; reused: Split[]; computed: Split[] };
  config: { runs: number; seed: number; probe: Omit<ProbeOptions, 'seed'> };
  runs: ProbeRun[];
}

/** Mean and sample standard deviation of the defined values (eva's `statistics.mean/stdev`). */
export function statistic(values: (number | null)[]): Statistic {
  const v = values.filter((x): x is number => x != null && Number.isFinite(x));
  if (v.length === 0) return { mean: null, stdev: null, values };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const stdev = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, stdev, values };
}

const METRICS: [string, (m: ClassificationMetrics) => number | null][] = [
  ['accuracy', (m) => m.accuracy],
  ['balanced_accuracy', (m) => m.balancedAccuracy],
  ['macro_f1', (m) => m.macroF1],
  ['auroc', (m) => m.auroc],
];

function summarise(runs: ProbeRun[], split: 'val' | 'test'): Record<string, Statistic>[] {
  if (runs.every((r) => r[split] == null)) return [];
  const out: Record<string, Statistic> = {};
  for (const [name, get] of METRICS) {
    out[`${split}/${name}`] = statistic(runs.map((r) => (r[split] ? get(r[split]!) : null)));
  }
  return [out];
}

export async function evalEncoder(o: EvalEncoderOptions): Promise<EvalEncoderResults> {
  await ready();
  const log = (m: string) => {
    if (!o.quiet) process.stderr.write(`${m}\n`);
  };
  const seed = o.seed ?? 0;
  const runs = o.runs ?? 5;
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${runs}`);
  const ds = await loadClassificationDataset(o.data, {
    valFraction: o.valFraction,
    testFraction: o.testFraction,
    seed,
  });
  const bySplit = Object.fromEntries(
    SPLITS.map((s) => [s, ds.samples.filter((x) => x.split === s)]),
  ) as Record<Split, SampleRef[]>;
  const counts = Object.fromEntries(SPLITS.map((s) => [s, bySplit[s].length])) as Record<Split, number>;
  log(
    `data: ${ds.classes.length} classes (${ds.classes.join(', ')}), train ${counts.train}, val ${counts.val}, test ${counts.test}`,
  );
  if (counts.train === 0) throw new Error(`${o.data}: no training samples after the split`);
  const encoder = typeof o.encoder === 'string' ? await openEncoder(o.encoder, o.pooling) : o.encoder;
  const cacheDir = o.cache ?? o.out;
  let embedded: Awaited<ReturnType<typeof embedSplits>>;
  try {
    embedded = await embedSplits(encoder, bySplit, cacheDir, { size: o.size, quiet: o.quiet });
  } finally {
    if (typeof o.encoder === 'string') encoder.dispose();
  }
  log(
    `embeddings: ${embedded.splits.train.dim}-d; reused ${embedded.reused.join(', ') || 'none'}, computed ${embedded.computed.join(', ') || 'none'}`,
  );
  const probe = o.probe ?? {};
  const results: ProbeRun[] = [];
  for (let r = 0; r < runs; r++) {
    const run = await trainProbe(
      { train: embedded.splits.train, val: embedded.splits.val, test: embedded.splits.test },
      ds.classes.length,
      { ...probe, seed: mixSeed(seed, r) },
    );
    results.push(run);
    log(
      `run ${r + 1}/${runs}: ${run.epochs} epochs (best ${run.bestEpoch})` +
        (run.val ? `  val acc ${run.val.accuracy.toFixed(4)}` : '') +
        (run.test ? `  test acc ${run.test.accuracy.toFixed(4)}` : ''),
    );
  }
  const out: EvalEncoderResults = {
    metrics: { val: summarise(results, 'val'), test: summarise(results, 'test') },
    encoder: { describe: encoder.describe, hash: encoder.hash },
    dataset: { source: ds.source, classes: ds.classes, counts },
    cache: { dir: cacheDir, reused: embedded.reused, computed: embedded.computed },
    config: { runs, seed, probe },
    runs: results,
  };
  await mkdir(o.out, { recursive: true });
  const file = join(o.out, 'results.json');
  await writeJsonAtomic(file, out);
  return out;
}

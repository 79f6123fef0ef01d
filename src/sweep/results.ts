/**
 * A sweep's results: each run's best and final validation metrics from its metrics.jsonl, one CSV row per
 * variant × seed, and the mean ± sample standard deviation over seeds per variant.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SweepRun } from './runs.ts';

export interface RunResult {
  variant: string;
  seed: number;
  /** Steps trained (the last training record), or null when the run has no log yet. */
  steps: number | null;
  /** `best_<metric>` (highest over validations) and `final_<metric>` (last validation). */
  metrics: Record<string, number | null>;
  /** Validation curves by metric: steps and values. */
  curves: Record<string, { x: number[]; y: number[] }>;
}

/** Validation metrics reported as numbers (per-class arrays are left out). */
function numericKeys(r: Record<string, unknown>): string[] {
  return Object.keys(r).filter(
    (k) => k !== 'type' && k !== 'step' && (typeof r[k] === 'number' || r[k] === null),
  );
}

export async function readRunResult(run: SweepRun): Promise<RunResult> {
  let text = '';
  try {
    text = await readFile(join(run.dir, 'metrics.jsonl'), 'utf8');
  } catch {
    // not started: no metrics
  }
  const records = text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const train = records.filter((r) => r.type === 'train');
  const val = records.filter((r) => r.type === 'val');
  const metrics: Record<string, number | null> = {};
  const curves: RunResult['curves'] = {};
  const keys = [...new Set(val.flatMap(numericKeys))];
  for (const k of keys) {
    const points = val.filter((r) => typeof r[k] === 'number') as Record<string, number>[];
    metrics[`best_${k}`] = points.length > 0 ? Math.max(...points.map((r) => r[k]!)) : null;
    const last = val.at(-1)?.[k];
    metrics[`final_${k}`] = typeof last === 'number' ? last : null;
    curves[k] = { x: points.map((r) => r.step!), y: points.map((r) => r[k]!) };
  }
  const steps = train.at(-1)?.step;
  return {
    variant: run.variant,
    seed: run.seed,
    steps: typeof steps === 'number' ? steps : null,
    metrics,
    curves,
  };
}

/** Metric columns in a stable order: each metric's best then final, metrics in order of first appearance. */
export function metricColumns(results: RunResult[]): string[] {
  const names: string[] = [];
  for (const r of results)
    for (const k of Object.keys(r.metrics)) {
      const m = k.replace(/^(best|final)_/, '');
      if (!names.includes(m)) names.push(m);
    }
  return names.flatMap((m) => [`best_${m}`, `final_${m}`]);
}

/** `variant,seed,steps,` then the metric columns; one row per run. */
export function sweepCsv(results: RunResult[]): string {
  const cols = metricColumns(results);
  const lines = [['variant', 'seed', 'steps', ...cols].join(',')];
  for (const r of results) {
    lines.push(
      [
        r.variant,
        r.seed,
        r.steps ?? '',
        ...cols.map((c) => (r.metrics[c] == null ? '' : String(r.metrics[c]))),
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

export interface Summary {
  variant: string;
  n: number;
  /** Per column: mean and sample standard deviation (null with one seed) over the seeds that have a value. */
  stats: Record<string, { mean: number; sd: number | null; n: number } | null>;
}

export function summarise(results: RunResult[]): Summary[] {
  const cols = metricColumns(results);
  const variants = [...new Set(results.map((r) => r.variant))];
  return variants.map((variant) => {
    const runs = results.filter((r) => r.variant === variant);
    const stats: Summary['stats'] = {};
    for (const c of cols) {
      const v = runs.map((r) => r.metrics[c]).filter((x): x is number => typeof x === 'number');
      if (v.length === 0) {
        stats[c] = null;
        continue;
      }
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : null;
      stats[c] = { mean, sd, n: v.length };
    }
    return { variant, n: runs.length, stats };
  });
}

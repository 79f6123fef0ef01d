/**
 * The runs of a sweep (variant × seed, variant-major) and their training configs: the base config, the sweep's data,
 * the variant's overrides, then the seed and the run folder `<out>/runs/<variant>/seed-<seed>`. A run is finished
 * when the trainer has delivered its model (`model.json`, written last and atomically).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadTrainConfig, type TrainConfig } from '../train/config.ts';
import type { SweepSpec } from './file.ts';

export interface SweepRun {
  variant: string;
  seed: number;
  dir: string;
}

export function sweepRuns(spec: SweepSpec, out: string): SweepRun[] {
  return spec.variants.flatMap((v) =>
    spec.seeds.map((seed) => ({ variant: v.name, seed, dir: resolve(out, 'runs', v.name, `seed-${seed}`) })),
  );
}

export function isFinished(run: SweepRun): boolean {
  return existsSync(join(run.dir, 'model.json'));
}

/** The training config of one run (errors name the sweep file and the variant). */
export async function runConfig(spec: SweepSpec, run: SweepRun): Promise<TrainConfig> {
  const variant = spec.variants.find((v) => v.name === run.variant);
  if (!variant) throw new Error(`${spec.source}: no variant '${run.variant}'`);
  // Values go through --set's parser as JSON (a subset of YAML), so they arrive with the types the file gave.
  const overrides: [string, string][] = [];
  if (spec.data) {
    const key = /\.(ya?ml|json)$/i.test(spec.data) ? 'data.slides' : 'data.dir';
    overrides.push([key, JSON.stringify(spec.data)]);
  }
  for (const [k, v] of variant.overrides) overrides.push([k, JSON.stringify(v)]);
  overrides.push(['seed', String(run.seed)], ['out', JSON.stringify(run.dir)]);
  try {
    return await loadTrainConfig(spec.base, overrides);
  } catch (e) {
    throw new Error(`${spec.source}: variant '${run.variant}': ${(e as Error).message}`);
  }
}

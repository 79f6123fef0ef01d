/**
 * Runs a sweep: every variant × seed trained one after another in this process (or as queue jobs), skipping runs that
 * have finished and resuming interrupted ones from their checkpoints, then the CSV, report and pictures.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TrainConfig } from '../train/config.ts';
import { train } from '../train/trainer.ts';
import type { SweepSpec } from './file.ts';
import { runOnQueue } from './queue.ts';
import { type SweepReportFiles, writeSweepReport } from './report.ts';
import { readRunResult } from './results.ts';
import { isFinished, runConfig, sweepRuns } from './runs.ts';

export interface SweepOptions {
  out: string;
  /** redis://… : run the trainings as BullMQ jobs instead of in this process. */
  queue?: string;
  quiet?: boolean;
  log?: (line: string) => void;
}

export interface SweepResult {
  runs: number;
  /** Runs trained (or resumed) now. */
  trained: number;
  /** Runs found finished and left as they were. */
  skipped: number;
  files: SweepReportFiles;
}

export async function runSweep(spec: SweepSpec, o: SweepOptions): Promise<SweepResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const runs = sweepRuns(spec, o.out);
  // Every run's config is built first, so a bad override in the last variant fails before hours of training.
  const configs: TrainConfig[] = [];
  for (const run of runs) configs.push(await runConfig(spec, run));
  await mkdir(o.out, { recursive: true });
  await writeFile(
    join(o.out, 'sweep.json'),
    `${JSON.stringify({ source: spec.source, base: spec.base, data: spec.data, seeds: spec.seeds, variants: spec.variants }, null, 2)}\n`,
  );
  const todo = runs.map((r, i) => ({ run: r, config: configs[i]! })).filter(({ run }) => !isFinished(run));
  const skipped = runs.length - todo.length;
  if (skipped > 0) log(`sweep: ${skipped} of ${runs.length} run(s) already finished, left as they are`);
  if (o.queue) {
    if (todo.length > 0)
      await runOnQueue(
        o.queue,
        todo.map(({ run, config }) => ({ variant: run.variant, seed: run.seed, config })),
        { log },
      );
  } else {
    for (const [i, { run, config }] of todo.entries()) {
      log(`sweep: run ${i + 1}/${todo.length}: ${run.variant} seed ${run.seed} → ${run.dir}`);
      await train(config, { resume: true, quiet: o.quiet });
    }
  }
  const results = await Promise.all(runs.map(readRunResult));
  const files = await writeSweepReport(spec, o.out, results, configs[0]!.bestMetric);
  return { runs: runs.length, trained: todo.length, skipped, files };
}

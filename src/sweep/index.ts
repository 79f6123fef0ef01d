/** Sweeps: a base training config × named variants × seeds, run in sequence or on BullMQ workers, with a report. */
export { readSweepFile, type SweepSpec, type SweepVariant, sweepSpecFrom } from './file.ts';
export { runSweepWorker, SWEEP_QUEUE } from './queue.ts';
export { type RunResult, readRunResult, summarise, sweepCsv } from './results.ts';
export { runSweep, type SweepOptions, type SweepResult } from './run.ts';
export { isFinished, runConfig, type SweepRun, sweepRuns } from './runs.ts';

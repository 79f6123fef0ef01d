/**
 * The one training loop that `train`, `pretrain` and the evaluation heads share: optimiser steps of `accumulate`
 * micro-batches, gradient clipping, AdamW with a step-wise schedule, a metrics log, progress, a hook after each
 * step (validation), and crash-safe checkpoints with exact resume.
 *
 * What differs between runs (data, loss, model, head, what a checkpoint holds besides the optimiser) comes in
 * through the spec; the loop owns the order of things, which is what makes a resumed run bit-identical to an
 * uninterrupted one: the learning rate and every random draw are functions of the step, and a checkpoint holds
 * the weights, the optimiser moments and the step count.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../core/atomic-write.ts';
import { Progress } from '../core/progress.ts';
import { ready, type tf } from '../engine/index.ts';
import { fromFloat32, type SafeTensor, toFloat32 } from '../io/safetensors.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors-file.ts';
import { type AdamW, applyGradients } from './adamw.ts';
import { commitFolder, pruneFolders, readPointer } from './checkpoint.ts';
import { type LogRecord, type MetricsLog, openMetricsLog } from './metrics-log.ts';
import { learningRate, type ScheduleOptions, scheduleOf } from './schedule.ts';

const OPTIMIZER_FILE = 'optimizer.safetensors';
const STATE_FILE = 'trainer_state.json';

/** What one optimiser step gathers: gradients summed over its micro-batches, and their summed loss. */
export class StepAccumulator {
  readonly grads = new Map<string, tf.Tensor>();
  loss = 0;

  /** Adds `grads` (keyed by parameter name) into the step's sums and disposes them. */
  addGradients(grads: Iterable<[string, tf.Tensor]>): void {
    for (const [key, g] of grads) {
      const prev = this.grads.get(key);
      if (prev) {
        this.grads.set(key, prev.add(g));
        prev.dispose();
        g.dispose();
      } else this.grads.set(key, g);
    }
  }

  addLoss(value: number): void {
    this.loss += value;
  }
}

/** `trainer_state.json` of a checkpoint: the loop's fields and whatever the run adds. */
export interface TrainerState {
  step: number;
  optimizerStep: number;
  [k: string]: unknown;
}

export interface TrainingLoopSpec {
  /** The progress bar's label. */
  label: string;
  /** The run folder: `checkpoints/` and `metrics.jsonl` go here. Absent: a run in memory (no files, no resume). */
  out?: string;
  opt: AdamW;
  schedule: ScheduleOptions;
  /** All steps of the run. */
  steps: number;
  /** Stop (after saving) once this step is reached, as if interrupted. */
  stopAtStep?: number;
  /** Micro-batches per optimiser step (default 1). */
  accumulate?: number;
  clipGradNorm: number | null | undefined;
  logEvery: number;
  /** Checkpoint every this many steps and at the stop (needs `out` and `saveWeights`). */
  saveEvery?: number;
  keepCheckpoints?: number;
  /** Continue from `<out>/checkpoints/latest.json` if it exists. */
  resume?: boolean;
  quiet?: boolean;
  log(message: string): void;
  /** Loads the run's weights (model, head) from a checkpoint folder. */
  restoreWeights?(dir: string): Promise<void>;
  /** Takes over (and may refuse, by throwing) the state of the checkpoint being resumed. */
  resumed?(state: TrainerState, dir: string): void;
  /** Writes the run's weights into a checkpoint folder (the loop adds the optimiser and the state); absent: no checkpoints. */
  saveWeights?(dir: string): Promise<void>;
  /** The run's fields of `trainer_state.json` at `step`. */
  state?(step: number): Record<string, unknown>;
  /** Called once the start step is known, before the first step (e.g. to start prefetching). */
  begin?(start: number, stopAt: number): void;
  /** Micro-batch `k` of step `step`: adds its gradients and loss to `acc`. */
  microBatch(step: number, k: number, acc: StepAccumulator): Promise<void>;
  /** Extra fields of a logged interval of `steps` steps over `intervalMs` (then the run starts a new interval). */
  intervalFields?(steps: number, intervalMs: number): Record<string, unknown>;
  /**
   * After step `done` is applied and logged, before any checkpoint: validation and the like. 'stop' ends the run
   * there (early stopping), with a checkpoint when the run keeps them.
   */
  afterStep?(done: number, metrics: MetricsLog): Promise<'stop' | undefined>;
}

export interface TrainingLoopResult {
  /** The step the run started from (0, or the resumed checkpoint's). */
  start: number;
  /** The step it stopped at (before `stopAtStep` when `afterStep` stopped it). */
  stopAt: number;
  /** Every metrics record of the run so far. */
  history: LogRecord[];
  /** Mean loss of the last logged interval; null when nothing was logged. */
  lastLoss: number | null;
}

/** The loop settings that the train and pretrain configs (and their options) spell alike. */
export function loopSettings(
  cfg: {
    out: string;
    steps: number;
    logEvery: number;
    saveEvery: number;
    keepCheckpoints: number;
    optim: Parameters<typeof scheduleOf>[0] & { clipGradNorm: number | null };
  },
  opts: { resume?: boolean; stopAtStep?: number; quiet?: boolean },
): Pick<
  TrainingLoopSpec,
  | 'out'
  | 'schedule'
  | 'steps'
  | 'stopAtStep'
  | 'clipGradNorm'
  | 'logEvery'
  | 'saveEvery'
  | 'keepCheckpoints'
  | 'resume'
  | 'quiet'
> {
  return {
    out: cfg.out,
    schedule: scheduleOf(cfg.optim, cfg.steps),
    steps: cfg.steps,
    stopAtStep: opts.stopAtStep,
    clipGradNorm: cfg.optim.clipGradNorm,
    logEvery: cfg.logEvery,
    saveEvery: cfg.saveEvery,
    keepCheckpoints: cfg.keepCheckpoints,
    resume: opts.resume,
    quiet: opts.quiet,
  };
}

/** Readies the backend and the run folder; `log` writes a line to stderr unless quiet. */
export async function startRun(
  out: string,
  quiet?: boolean,
): Promise<{ log: (message: string) => void; backend: string }> {
  const log = (m: string) => {
    if (!quiet) process.stderr.write(`${m}\n`);
  };
  const backend = await ready();
  log(`backend: ${backend}`);
  await mkdir(out, { recursive: true });
  return { log, backend };
}

/** Restores the newest checkpoint under `<out>/checkpoints`; returns its step (0 when there is none). */
async function resume(spec: TrainingLoopSpec, ckptDir: string): Promise<number> {
  const latest = await readPointer(ckptDir, 'latest.json');
  if (!latest) return 0;
  if (!spec.restoreWeights) throw new Error(`${latest.dir}: this run cannot resume (no weights to restore)`);
  await spec.restoreWeights(latest.dir);
  const optState = (await readSafetensors(join(latest.dir, OPTIMIZER_FILE))).tensors;
  const state = JSON.parse(await readFile(join(latest.dir, STATE_FILE), 'utf8')) as TrainerState;
  spec.opt.loadState(new Map([...optState].map(([k, t]) => [k, toFloat32(t, k)])), state.optimizerStep);
  spec.resumed?.(state, latest.dir);
  spec.log(`resumed from ${latest.dir} at step ${state.step}`);
  return state.step;
}

async function saveCheckpoint(
  spec: TrainingLoopSpec & { saveWeights: (dir: string) => Promise<void> },
  ckptDir: string,
  step: number,
): Promise<void> {
  const name = `step-${String(step).padStart(7, '0')}`;
  await commitFolder(
    ckptDir,
    name,
    'latest.json',
    async (dir) => {
      await spec.saveWeights(dir);
      await writeSafetensors(
        join(dir, OPTIMIZER_FILE),
        [...spec.opt.stateTensors()].map(([k, t]): [string, SafeTensor] => [
          k,
          fromFloat32(Float32Array.from(t.dataSync() as Float32Array), t.shape),
        ]),
      );
      await writeJsonAtomic(join(dir, STATE_FILE), {
        step,
        optimizerStep: spec.opt.stepCount,
        ...spec.state?.(step),
      });
    },
    { step },
  );
  await pruneFolders(ckptDir, 'step-', spec.keepCheckpoints ?? 2, [name]);
}

/** The metrics of a run without a folder: kept in memory only. */
function memoryLog(): MetricsLog {
  const history: LogRecord[] = [];
  return {
    path: '',
    history,
    async record(r) {
      history.push(r);
    },
  };
}

export async function runTrainingLoop(spec: TrainingLoopSpec): Promise<TrainingLoopResult> {
  const ckptDir = spec.out ? join(spec.out, 'checkpoints') : null;
  if (spec.out) await mkdir(spec.out, { recursive: true });
  const start = spec.resume && ckptDir ? await resume(spec, ckptDir) : 0;
  const metrics = spec.out ? await openMetricsLog(join(spec.out, 'metrics.jsonl'), start) : memoryLog();
  const saveWeights = spec.saveWeights;
  const saveEvery = spec.saveEvery ?? 0;
  const stopAt = Math.min(spec.steps, spec.stopAtStep ?? spec.steps);
  const accumulate = spec.accumulate ?? 1;
  const progress = new Progress(spec.label, spec.steps, start);
  let lossSum = 0;
  let lossCount = 0;
  let lastLoss: number | null = null;
  let intervalStart = performance.now();
  const t0 = performance.now();
  let end = stopAt;
  spec.begin?.(start, stopAt);
  for (let step = start; step < stopAt; step++) {
    spec.opt.lr = learningRate(step, spec.schedule);
    const acc = new StepAccumulator();
    for (let k = 0; k < accumulate; k++) await spec.microBatch(step, k, acc);
    const gradNorm = applyGradients(spec.opt, acc.grads, spec.clipGradNorm);
    const done = step + 1;
    lossSum += acc.loss;
    lossCount++;
    if (done % spec.logEvery === 0 || done === stopAt) {
      const now = performance.now();
      const r: LogRecord = {
        type: 'train',
        step: done,
        loss: lossSum / lossCount,
        lr: spec.opt.lr,
        ...(gradNorm != null ? { gradNorm } : {}),
        stepsPerSec: (done - start) / ((now - t0) / 1000),
        ...spec.intervalFields?.(lossCount, now - intervalStart),
      };
      await metrics.record(r);
      lastLoss = r.loss as number;
      lossSum = 0;
      lossCount = 0;
      intervalStart = now;
    }
    if (!spec.quiet) progress.update(done, { loss: acc.loss, lr: spec.opt.lr }, done === stopAt);
    const halt = (await spec.afterStep?.(done, metrics)) === 'stop';
    if (ckptDir && saveWeights && ((saveEvery > 0 && done % saveEvery === 0) || done === stopAt || halt))
      await saveCheckpoint({ ...spec, saveWeights }, ckptDir, done);
    if (halt) {
      end = done;
      break;
    }
  }
  if (!spec.quiet) progress.done();
  return { start, stopAt: end, history: metrics.history, lastLoss };
}

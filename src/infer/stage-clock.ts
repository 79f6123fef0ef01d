/**
 * Where the time of a whole-slide run goes, stage by stage (for `bench/infer-slide.ts`; off unless a clock is
 * passed in). Stages on the main thread (normalise, upsample + softmax, blend, argmax, the synchronous part of
 * queuing a write) are timed as they run. Stages that run elsewhere (reads and decodes in the slide's worker pool,
 * the model on ONNX Runtime's threads, chunk encoding in libuv's pool) overlap the main thread and each other: for
 * those the clock keeps their latency (issue to completion) and, separately, how long the main loop waited on them.
 */

export const STAGES = [
  'read/decode',
  'resample',
  'normalise',
  'model',
  'upsample+softmax',
  'blend',
  'argmax',
  'write',
] as const;
export type Stage = (typeof STAGES)[number];

const zeros = () => Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>;

export interface StageTimes {
  /** Main-thread milliseconds, by stage. */
  ms: Record<Stage, number>;
  /** Summed latency (issue to completion) of the asynchronous work, by stage. */
  latencyMs: Record<Stage, number>;
  /** Milliseconds the tile loop stood waiting on a stage. */
  waitMs: Record<Stage, number>;
}

export class StageClock implements StageTimes {
  readonly ms = zeros();
  readonly latencyMs = zeros();
  readonly waitMs = zeros();

  /** Adds main-thread time. */
  add(stage: Stage, ms: number): void {
    this.ms[stage] += ms;
  }

  /** Times a synchronous section. */
  time<T>(stage: Stage, run: () => T): T {
    const t0 = performance.now();
    try {
      return run();
    } finally {
      this.add(stage, performance.now() - t0);
    }
  }

  /** Records the latency of an asynchronous stage when `p` settles; returns `p`. */
  latency<T>(stage: Stage, p: Promise<T>): Promise<T> {
    const t0 = performance.now();
    const done = () => {
      this.latencyMs[stage] += performance.now() - t0;
    };
    p.then(done, done);
    return p;
  }

  /** Awaits `p`, counting the wait against `stage`. */
  async wait<T>(stage: Stage, p: Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await p;
    } finally {
      this.waitMs[stage] += performance.now() - t0;
    }
  }

  /** A copy of the counters (for differences between two moments of a run). */
  snapshot(): StageTimes {
    return { ms: { ...this.ms }, latencyMs: { ...this.latencyMs }, waitMs: { ...this.waitMs } };
  }
}

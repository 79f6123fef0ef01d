/**
 * Scale-out on BullMQ + Redis: `enqueue` adds one job per manifest slide (job id = slide name, so enqueueing twice
 * adds nothing), any number of `worker` processes on any machines sharing the output folder run them. Retries back
 * off exponentially; a worker that dies mid-slide loses its lock and the job is picked up again by another worker
 * (BullMQ's stalled-job check); per-slide outputs are idempotent (see cohort.ts: temporary folder + rename).
 */
import { Queue, Worker } from 'bullmq';
import { redisConnection } from '../queue/redis.ts';
import { runUntilStopped } from '../queue/worker-loop.ts';

export { redisOptions } from '../queue/redis.ts';

import { readManifest, runSlideJob, type SlideJobOptions } from './cohort.ts';

export const QUEUE_NAME = 'slideseg-infer';

export interface SlideJobData {
  slide: string;
  name: string;
  out: string;
  options: SlideJobOptions;
}

export interface EnqueueOptions {
  attempts?: number;
  /** First retry delay in ms (doubles each time; default 5000). */
  backoffMs?: number;
}

export async function enqueueManifest(
  manifest: string,
  queueUrl: string,
  out: string,
  options: SlideJobOptions,
  o: EnqueueOptions = {},
): Promise<{ added: number; total: number }> {
  const entries = await readManifest(manifest);
  const connection = redisConnection(queueUrl);
  const queue = new Queue<SlideJobData>(QUEUE_NAME, { connection });
  try {
    let added = 0;
    for (const e of entries) {
      const existing = await queue.getJob(e.name);
      if (existing) continue;
      await queue.add(
        e.name,
        { slide: e.slide, name: e.name, out, options },
        {
          jobId: e.name,
          attempts: o.attempts ?? 3,
          backoff: { type: 'exponential', delay: o.backoffMs ?? 5000 },
          removeOnComplete: false,
          removeOnFail: false,
        },
      );
      added++;
    }
    return { added, total: entries.length };
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

export interface WorkerOptions {
  concurrency?: number;
  /** Lock time-out in ms: a worker silent this long is presumed dead (default 60000). */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for, ms (default 30000). */
  stalledIntervalMs?: number;
  /** Exit after this many ms without a job (default: run forever). */
  idleExitMs?: number;
  log?: (line: string) => void;
}

/** Runs jobs until SIGINT/SIGTERM (or idle for idleExitMs). */
export async function runWorker(queueUrl: string, o: WorkerOptions = {}): Promise<void> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const workerConnection = redisConnection(queueUrl);
  const worker = new Worker<SlideJobData>(
    QUEUE_NAME,
    async (job) => {
      const { slide, name, out, options } = job.data;
      log(`worker ${process.pid}: ${name} (attempt ${job.attemptsMade + 1})`);
      const r = await runSlideJob({ slide, name }, out, {
        ...options,
        onProgress: (p) => {
          void job.updateProgress(Math.round((100 * p.tilesDone) / Math.max(1, p.tilesTotal)));
        },
        log: null,
      });
      log(`worker ${process.pid}: ${name} ${r.status}`);
      return { status: r.status, tiles: r.summary?.tiles.computed ?? 0 };
    },
    {
      connection: workerConnection,
      concurrency: o.concurrency ?? 1,
      lockDuration: o.lockDurationMs ?? 60_000,
      stalledInterval: o.stalledIntervalMs ?? 30_000,
      maxStalledCount: 3,
    },
  );
  worker.on('failed', (job, err) => log(`worker ${process.pid}: ${job?.data.name} failed: ${err.message}`));
  await runUntilStopped(worker, {
    queueName: QUEUE_NAME,
    queueUrl,
    connection: workerConnection,
    idleExitMs: o.idleExitMs,
  });
}

export async function queueStatus(queueUrl: string): Promise<Record<string, number>> {
  const connection = redisConnection(queueUrl);
  const queue = new Queue(QUEUE_NAME, { connection });
  try {
    return await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

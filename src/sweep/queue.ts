/**
 * Sweeps on BullMQ + Redis (the model is src/infer/queue.ts): the sweep process adds one job per unfinished run
 * (job id from the run folder, so adding twice adds nothing) and waits; `slideseg sweep --worker --queue URL`
 * processes on any machine that sees the same output folder train the runs, one at a time, each resuming from its
 * own checkpoints — so a worker that dies mid-run loses nothing but the steps since the last checkpoint.
 */
import { createHash } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { redisOptions } from '../queue/redis.ts';
import { runUntilStopped } from '../queue/worker-loop.ts';
import type { TrainConfig } from '../train/config.ts';
import { train } from '../train/trainer.ts';

export const SWEEP_QUEUE = 'slideseg-sweep';

export interface SweepJobData {
  variant: string;
  seed: number;
  config: TrainConfig;
}

function jobId(config: TrainConfig): string {
  return `run-${createHash('sha1').update(config.out).digest('hex').slice(0, 16)}`;
}

/** Adds a job per run (unless one exists: a failed one is retried) and resolves when all have completed. */
export async function runOnQueue(
  queueUrl: string,
  jobs: SweepJobData[],
  o: { log: (line: string) => void; pollMs?: number; attempts?: number },
): Promise<void> {
  const connection = new Redis(redisOptions(queueUrl));
  const queue = new Queue<SweepJobData>(SWEEP_QUEUE, { connection });
  try {
    const ids: string[] = [];
    for (const data of jobs) {
      const id = jobId(data.config);
      ids.push(id);
      const existing = await queue.getJob(id);
      if (existing) {
        if (await existing.isFailed()) await existing.retry();
        continue;
      }
      await queue.add(`${data.variant} seed ${data.seed}`, data, {
        jobId: id,
        attempts: o.attempts ?? 2,
        backoff: { type: 'exponential', delay: 5000 },
        removeOnComplete: false,
        removeOnFail: false,
      });
    }
    o.log(
      `sweep: ${ids.length} run(s) on ${SWEEP_QUEUE} at ${queueUrl}; waiting for workers (slideseg sweep --worker --queue …)`,
    );
    const pending = new Set(ids);
    while (pending.size > 0) {
      for (const id of [...pending]) {
        const job = await queue.getJob(id);
        const state = job ? await job.getState() : 'unknown';
        if (state === 'completed') {
          pending.delete(id);
          o.log(
            `sweep: ${job!.data.variant} seed ${job!.data.seed} done (${ids.length - pending.size}/${ids.length})`,
          );
        } else if (state === 'failed' && job && job.attemptsMade >= (job.opts.attempts ?? 1)) {
          throw new Error(
            `sweep: ${job.data.variant} seed ${job.data.seed} failed on a worker: ${job.failedReason}`,
          );
        } else if (state === 'unknown') {
          throw new Error(`sweep: job ${id} vanished from the queue`);
        }
      }
      if (pending.size > 0) await new Promise((r) => setTimeout(r, o.pollMs ?? 1000));
    }
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** Trains sweep runs from the queue until SIGINT/SIGTERM, or until idle for idleExitMs with nothing queued. */
export async function runSweepWorker(
  queueUrl: string,
  o: { idleExitMs?: number; log?: (line: string) => void } = {},
): Promise<void> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const connection = new Redis(redisOptions(queueUrl));
  const worker = new Worker<SweepJobData>(
    SWEEP_QUEUE,
    async (job) => {
      const { variant, seed, config } = job.data;
      log(`sweep worker ${process.pid}: ${variant} seed ${seed} (attempt ${job.attemptsMade + 1})`);
      const r = await train(config, { resume: true, quiet: true });
      log(`sweep worker ${process.pid}: ${variant} seed ${seed} trained ${r.step} steps`);
      return { step: r.step, best: r.best };
    },
    // Training steps hold the event loop for seconds: a long lock keeps BullMQ from calling a busy worker stalled.
    { connection, concurrency: 1, lockDuration: 600_000, stalledInterval: 300_000, maxStalledCount: 3 },
  );
  worker.on('failed', (job, err) =>
    log(`sweep worker ${process.pid}: ${job?.data.variant} failed: ${err.message}`),
  );
  await runUntilStopped(worker, { queueName: SWEEP_QUEUE, queueUrl, connection, idleExitMs: o.idleExitMs });
}

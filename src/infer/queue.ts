/**
 * Scale-out on BullMQ + Redis: `enqueue` adds one job per manifest slide (job id = slide name, so enqueueing twice
 * adds nothing), any number of `worker` processes on any machines sharing the output folder run them. Retries back
 * off exponentially; a worker that dies mid-slide loses its lock and the job is picked up again by another worker
 * (BullMQ's stalled-job check); per-slide outputs are idempotent (see cohort.ts: temporary folder + rename).
 */
import { Queue, Worker } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { readManifest, runSlideJob, type SlideJobOptions } from './cohort.ts';

export const QUEUE_NAME = 'slideseg-infer';

export interface SlideJobData {
  slide: string;
  name: string;
  out: string;
  options: SlideJobOptions;
}

/** redis://[user:pass@]host:port[/db] → ioredis options (BullMQ wants maxRetriesPerRequest null). */
export function redisOptions(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--queue: not a redis:// URL: ${url}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new Error(`--queue: not a redis:// URL: ${url}`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new Error(`--queue: bad database number in ${url}`);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db,
    username: u.username || undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
  };
}

/** A client for BullMQ; BullMQ leaves clients it is given open, so callers quit them after closing. */
function redisConnection(url: string): Redis {
  return new Redis(redisOptions(url));
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
  await worker.waitUntilReady();
  await new Promise<void>((resolveDone) => {
    let idle: NodeJS.Timeout | undefined;
    const stop = () => {
      clearTimeout(idle);
      void worker.close().then(() => {
        workerConnection.disconnect();
        resolveDone();
      });
    };
    const arm = () => {
      if (o.idleExitMs === undefined) return;
      clearTimeout(idle);
      idle = setTimeout(async () => {
        const connection = redisConnection(queueUrl);
        const q = new Queue(QUEUE_NAME, { connection });
        const counts = await q.getJobCounts();
        await q.close();
        connection.disconnect();
        if ((counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) === 0) stop();
        else arm();
      }, o.idleExitMs);
    };
    worker.on('active', () => clearTimeout(idle));
    worker.on('completed', arm);
    worker.on('failed', arm);
    arm();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
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

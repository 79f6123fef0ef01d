/**
 * Runs a BullMQ worker until SIGINT/SIGTERM, or, with `idleExitMs`, until it has been idle that long with nothing
 * waiting, active or delayed on its queue; then closes the worker and its connection. Shared by the slide-inference
 * and sweep workers.
 */
import { Queue, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { redisConnection } from './redis.ts';

export async function runUntilStopped(
  worker: Worker,
  o: { queueName: string; queueUrl: string; connection: Redis; idleExitMs?: number },
): Promise<void> {
  await worker.waitUntilReady();
  await new Promise<void>((done) => {
    let idle: NodeJS.Timeout | undefined;
    const stop = () => {
      clearTimeout(idle);
      void worker.close().then(() => {
        o.connection.disconnect();
        done();
      });
    };
    const arm = () => {
      if (o.idleExitMs === undefined) return;
      clearTimeout(idle);
      idle = setTimeout(async () => {
        const connection = redisConnection(o.queueUrl);
        const q = new Queue(o.queueName, { connection });
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

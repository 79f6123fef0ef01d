import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';

const USAGE = `slideseg worker --queue redis://HOST:PORT/DB [--concurrency 1] [--lock-ms 60000] [--stalled-ms 30000] [--idle-exit-ms N]

Runs queued slides until SIGINT/SIGTERM (or, with --idle-exit-ms, once the queue has been empty that long).
A worker that dies mid-slide loses its lock after --lock-ms; the slide is then run again by another worker.`;

export const command: Command = {
  name: 'worker',
  summary: 'Run queued slide inference jobs from BullMQ/Redis',
  usage: USAGE,
  async run(args) {
    const { runWorker } = await import('../../infer/queue.ts');
    const { values } = parseArgs({
      args,
      options: {
        queue: { type: 'string' },
        concurrency: { type: 'string' },
        'lock-ms': { type: 'string' },
        'stalled-ms': { type: 'string' },
        'idle-exit-ms': { type: 'string' },
      },
    });
    if (!values.queue) throw new UsageError(`worker: --queue is required\n${USAGE}`);
    const n = (v: string | undefined) => (v === undefined ? undefined : Number(v));
    await runWorker(values.queue, {
      concurrency: n(values.concurrency),
      lockDurationMs: n(values['lock-ms']),
      stalledIntervalMs: n(values['stalled-ms']),
      idleExitMs: n(values['idle-exit-ms']),
    });
    return 0;
  },
};

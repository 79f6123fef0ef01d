import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';

export const command: Command = {
  name: 'queue-status',
  summary: 'Counts of waiting/active/completed/failed slide jobs on a BullMQ/Redis queue',
  usage: 'slideseg queue-status --queue redis://HOST:PORT/DB',
  async run(args) {
    const { queueStatus } = await import('../../infer/queue.ts');
    const { values } = parseArgs({ args, options: { queue: { type: 'string' } } });
    if (!values.queue) throw new UsageError('queue-status: --queue is required');
    const counts = await queueStatus(values.queue);
    console.log(
      Object.entries(counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    );
    return 0;
  },
};

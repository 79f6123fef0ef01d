import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';

export const command: Command = {
  name: 'queue-status',
  summary: 'Counts of waiting/active/completed/failed slide jobs on a BullMQ/Redis queue',
  usage: 'slideseg queue-status --queue redis://HOST:PORT/DB [--json]',
  async run(args) {
    const { queueStatus } = await import('../../infer/queue.ts');
    const { values } = parseArgs({ args, options: { queue: { type: 'string' }, json: { type: 'boolean' } } });
    if (!values.queue) throw new UsageError('queue-status: --queue is required');
    const counts = await queueStatus(values.queue);
    if (values.json) {
      console.log(JSON.stringify(counts));
      return 0;
    }
    console.log(
      Object.entries(counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    );
    return 0;
  },
};

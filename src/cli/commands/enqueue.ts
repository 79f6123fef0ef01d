import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';
import { SLIDE_JOB_OPTIONS, SLIDE_JOB_USAGE, slideJobOptions } from '../slide-job-options.ts';

const USAGE = `slideseg enqueue manifest.csv --queue redis://HOST:PORT/DB --out DIR --model DIR|model.onnx [options]

Adds one BullMQ job per slide (job id = slide name: enqueueing again adds nothing). Workers write DIR/<name>/.
  --attempts N         tries per slide (default 3), retried with exponential back-off
  --backoff-ms N       first retry delay (default 5000)
${SLIDE_JOB_USAGE}`;

export const command: Command = {
  name: 'enqueue',
  summary: 'Queue a manifest of slides for inference on BullMQ/Redis workers',
  usage: USAGE,
  async run(args) {
    const { enqueueManifest } = await import('../../infer/queue.ts');
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...SLIDE_JOB_OPTIONS,
        out: { type: 'string' },
        queue: { type: 'string' },
        attempts: { type: 'string' },
        'backoff-ms': { type: 'string' },
      },
    });
    if (positionals.length !== 1 || !values.out || !values.queue)
      throw new UsageError(`enqueue: manifest, --queue and --out are required\n${USAGE}`);
    const options = slideJobOptions(values, (p) => resolve(p));
    const r = await enqueueManifest(positionals[0]!, values.queue, resolve(values.out), options, {
      attempts: values.attempts ? Number(values.attempts) : undefined,
      backoffMs: values['backoff-ms'] ? Number(values['backoff-ms']) : undefined,
    });
    console.log(`enqueued ${r.added} of ${r.total} slides`);
    return 0;
  },
};

import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';
import { SLIDE_JOB_OPTIONS, SLIDE_JOB_USAGE, slideJobOptions } from '../slide-job-options.ts';

const USAGE = `slideseg infer-many manifest.csv --out DIR --model DIR|model.onnx [--workers N] [options]

Segments every slide of a CSV manifest (header 'slide[,name]') into DIR/<name>/ with N worker processes.
Finished slides are skipped; a slide's folder appears only when complete (temporary folder + rename).
${SLIDE_JOB_USAGE}`;

export const command: Command = {
  name: 'infer-many',
  summary: 'Segment a manifest of slides on this machine with N worker processes (idempotent per slide)',
  usage: USAGE,
  async run(args) {
    const { inferMany } = await import('../../infer/cohort.ts');
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { ...SLIDE_JOB_OPTIONS, out: { type: 'string' }, workers: { type: 'string' } },
    });
    if (positionals.length !== 1 || !values.out)
      throw new UsageError(`infer-many: manifest and --out are required\n${USAGE}`);
    const options = slideJobOptions(values, (p) => resolve(p));
    const workers = Number(values.workers ?? 1);
    const r = await inferMany(positionals[0]!, values.out, { options, workers });
    console.log(`done ${r.done.length}, skipped ${r.skipped.length}, failed ${r.failed.length}`);
    for (const f of r.failed) console.log(`failed ${f.name}: ${f.error}`);
    return r.failed.length ? 1 : 0;
  },
};

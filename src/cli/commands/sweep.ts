import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';

const USAGE = `slideseg sweep SWEEP.yaml --out DIR [--queue redis://HOST:PORT] [--backend NAME] [--quiet] [--json]
slideseg sweep --worker --queue redis://HOST:PORT [--idle-exit SECONDS] [--backend NAME]

Trains a base config's variants × seeds one after another (or as BullMQ jobs with --queue, trained by
'slideseg sweep --worker' processes that share DIR), then writes DIR/sweep.csv (variant, seed, steps, best_ and
final_ validation metrics), DIR/report.md (mean ± sd over seeds) and DIR/pictures/ (a bar chart per metric, all
validation curves in one plot). Killed and started again, it skips finished runs and resumes the interrupted one.

The sweep file (paths relative to it):
  base: train.yaml                 # a training config
  data: ../data                    # as train's --data (optional)
  seeds: [0, 1]
  variants:
    dice-ce: {}
    mcc: { model.numLabels: 1, loss: [ { name: mcc } ] }   # dotted keys as --set takes; a list replaces

Options:
  --out DIR          sweep folder (runs/<variant>/seed-<seed>/, sweep.csv, report.md, pictures/)
  --queue URL        run the trainings as jobs on this Redis (BullMQ)
  --worker           train queued sweep runs (with --queue)
  --idle-exit S      with --worker: exit after S seconds with nothing queued
  --backend NAME     wasm (default) | cpu | tensorflow
  --json             print the result as JSON
  --quiet            no progress bars`;

export const command: Command = {
  name: 'sweep',
  summary: 'Train variants × seeds of a config (in sequence or on BullMQ workers) and compare them',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        out: { type: 'string' },
        queue: { type: 'string' },
        worker: { type: 'boolean' },
        'idle-exit': { type: 'string' },
        backend: { type: 'string' },
        json: { type: 'boolean' },
        quiet: { type: 'boolean' },
      },
    });
    const { ready } = await import('../../engine/index.ts');
    if (values.worker) {
      if (!values.queue) throw new UsageError('sweep --worker needs --queue redis://…');
      const idle = values['idle-exit'] === undefined ? undefined : Number(values['idle-exit']);
      if (idle !== undefined && !(idle > 0))
        throw new UsageError(`--idle-exit: seconds > 0, got ${values['idle-exit']}`);
      await ready(values.backend);
      const { runSweepWorker } = await import('../../sweep/index.ts');
      await runSweepWorker(values.queue, { idleExitMs: idle === undefined ? undefined : idle * 1000 });
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError(`sweep: give one sweep file\n${USAGE}`);
    if (!values.out) throw new UsageError('sweep: --out DIR is required');
    const { readSweepFile, runSweep } = await import('../../sweep/index.ts');
    const spec = await readSweepFile(positionals[0]!);
    await ready(values.backend);
    const r = await runSweep(spec, { out: values.out, queue: values.queue, quiet: values.quiet });
    if (values.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    else
      console.log(
        `sweep: ${r.runs} runs (${r.trained} trained now, ${r.skipped} already done) → ${r.files.csv}, ${r.files.report}`,
      );
    return 0;
  },
};

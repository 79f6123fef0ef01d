import { parseArgs } from 'node:util';
import type { Command } from '../command.ts';

export const command: Command = {
  name: 'demo',
  summary: 'The whole job on the bundled CC0 slide: tissue, online patches, training, inference, report',
  usage: `slideseg demo [--out DIR] [--slide SLIDE] [--steps N] [--patches N] [--seed S] [--backend NAME]

Detects tissue on the bundled CC0 slide (samples/cmu-1-small-region.svs), streams patches online with weak
nuclei labels (haematoxylin colour deconvolution + Otsu), trains a small SegFormer, runs whole-slide inference
and writes DIR/report.md with pictures (default DIR: demo-out). A few minutes on two cores, no network.`,
  async run(args) {
    const { runDemo } = await import('../../demo/run.ts');
    const { ready } = await import('../../engine/index.ts');
    const { values } = parseArgs({
      args,
      options: {
        out: { type: 'string', default: 'demo-out' },
        slide: { type: 'string' },
        steps: { type: 'string' },
        patches: { type: 'string' },
        seed: { type: 'string' },
        backend: { type: 'string' },
        quiet: { type: 'boolean' },
        verbose: { type: 'boolean' },
      },
    });
    await ready(values.backend);
    const r = await runDemo({
      out: values.out!,
      slide: values.slide,
      steps: values.steps ? Number(values.steps) : undefined,
      patches: values.patches ? Number(values.patches) : undefined,
      seed: values.seed ? Number(values.seed) : undefined,
      quiet: values.quiet,
    });
    console.log(`report: ${r.report} (${r.seconds.toFixed(0)} s)`);
    return 0;
  },
};

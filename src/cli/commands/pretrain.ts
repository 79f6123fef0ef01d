import { parseArgs } from 'node:util';
import type { Command } from '../command.ts';
import { configOverrides, RUN_CONFIG_OPTIONS } from '../run-config.ts';

const USAGE = `slideseg pretrain --config pretrain.yaml [--data DIR] [--out RUN] [--resume] [--set key=value ...]

Contrastive pretraining of the SegFormer (MiT) encoder: two augmented views per patch, a 2-layer projection head
to 128-d, SupCon loss with patch labels (the mask's majority class, annotations, or a CSV), or SimCLR with
labels: none. Config keys and defaults are in src/train/pretrain-config.ts; --set overrides any of them
(dotted: --set optim.lr=1e-4 --set labels=none).

Data sources (one):
  data.dir: DIR            DIR/images + DIR/masks (MoNuSeg layout), random patches of 'patch' px
  data.slides: [FILES]     slides read online (data.sampler, data.mpp, data.annotations: one file per slide)
  data.csv: FILE           rows of 'image path,label' (paths relative to the CSV)

Output (RUN): metrics.jsonl, curves/loss.png, checkpoints/ (crash-safe, for --resume), and encoder/ — an
encoder checkpoint (config.json + model.safetensors with segformer.encoder.* keys + projection_head.safetensors)
to start training from: slideseg train --set model.encoder=RUN/encoder

Options:
  --config FILE     YAML or JSON configuration
  --data DIR        shorthand for --set data.dir=DIR
  --out RUN         run folder
  --steps N         shorthand for --set steps=N
  --resume          continue from RUN/checkpoints/latest.json
  --backend NAME    wasm (default) | cpu | tensorflow
  --quiet           no progress bar
  --json            print the result as JSON`;

export const command: Command = {
  name: 'pretrain',
  summary: 'SupCon / SimCLR pretraining of the MiT encoder on patches (encoder checkpoint for train)',
  usage: USAGE,
  async run(args) {
    const { ready } = await import('../../engine/index.ts');
    const { pretrain } = await import('../../train/pretrain.ts');
    const { loadPretrainConfig } = await import('../../train/pretrain-config.ts');
    const { values } = parseArgs({ args, options: RUN_CONFIG_OPTIONS });
    const overrides = configOverrides(values);
    const cfg = await loadPretrainConfig(values.config, overrides);
    await ready(values.backend);
    const result = await pretrain(cfg, { resume: values.resume, quiet: values.quiet });
    if (values.json) {
      console.log(JSON.stringify(result, null, 2));
      return 0;
    }
    const loss = result.lastLoss != null ? `, last loss ${result.lastLoss.toFixed(4)}` : '';
    console.log(`pretrained ${result.step} steps → ${result.encoder ?? result.out}${loss}`);
    return 0;
  },
};

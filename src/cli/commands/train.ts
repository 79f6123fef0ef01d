import { parseArgs } from 'node:util';
import type { Command } from '../command.ts';
import { configOverrides, RUN_CONFIG_OPTIONS } from '../run-config.ts';

const USAGE = `slideseg train --config train.yaml [--data DIR|SLIDES.yaml] [--out RUN] [--resume] [--set key=value ...]

Trains a SegFormer on folders of images and masks (DIR/images/NAME.* + DIR/masks/NAME.png, label PNGs with the
class index per pixel), or on slides with Aperio XML / GeoJSON annotations listed in a slide data-set file
(patches read online, split by slide; see README "Slides with annotations"). Config keys (YAML) and their defaults are in src/train/config.ts; any key can be
overridden with --set (dotted: --set optim.lr=1e-4 --set steps=2000).

Options:
  --config FILE     YAML or JSON training configuration
  --data DIR        shorthand for --set data.dir=DIR
  --data FILE.yaml  shorthand for --set data.slides=FILE.yaml (slides + annotations)
  --out RUN         run folder (metrics.jsonl/csv, curves/*.png, val/*.png, checkpoints/, best/, model/)
  --resume          continue from RUN/checkpoints/latest.json
  --steps N         shorthand for --set steps=N
  --backend NAME    wasm (default) | cpu | tensorflow
  --quiet           no progress bar
  --json            print the result (steps, run folder, best checkpoint) as JSON`;

export const command: Command = {
  name: 'train',
  summary: 'Train a SegFormer on images + masks or slides + annotations (checkpoints, resume, curves)',
  usage: USAGE,
  async run(args) {
    const { ready } = await import('../../engine/index.ts');
    const { loadTrainConfig } = await import('../../train/config.ts');
    const { train } = await import('../../train/trainer.ts');
    const { values } = parseArgs({ args, options: RUN_CONFIG_OPTIONS });
    const overrides = configOverrides(values, 'data.slides');
    const cfg = await loadTrainConfig(values.config, overrides);
    await ready(values.backend);
    const result = await train(cfg, { resume: values.resume, quiet: values.quiet });
    if (values.json) {
      console.log(JSON.stringify(result, null, 2));
      return 0;
    }
    const best = result.best
      ? `best ${result.best.metric} ${result.best.value.toFixed(4)} at step ${result.best.step}`
      : 'no validation';
    console.log(`trained ${result.step} steps → ${result.out}/model (${best})`);
    return 0;
  },
};

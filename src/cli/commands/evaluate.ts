import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import type { TestTimeAugmentation } from '../../core/tta.ts';
import { type Command, UsageError } from '../command.ts';
import { numberOption } from '../options.ts';

const USAGE = `slideseg evaluate --model DIR (--images DIR --masks DIR | --data SLIDES.yaml) [options]

Scores a SegFormer folder on images and label masks (PNG, class index per pixel, matched by file name), or on
slides with Aperio XML / GeoJSON annotations (a slide data-set file: grid patches on tissue at its mpp, masks
rasterised from the polygons): per-class and mean IoU, Dice, precision, recall, aAcc, MCC (binary), scores per
image or per slide.

  --model DIR        SegFormer checkpoint folder (config.json, model.safetensors, preprocessor_config.json)
  --images DIR       images (.png .jpg .tif)
  --masks DIR        label masks with the same base names
  --data FILE        slide data set (YAML/JSON: slides, annotations, classes, mpp, patchSize, …)
  --split S          with --data: all (default), train or val (the seeded split by slide that train makes)
  --seed N           with --split: the training seed (default 0)
  --metrics FILE     metrics as a JSON file
  --json             print the metrics as JSON on stdout (default: a one-line summary)
  --report FILE      Markdown report
  --overlays DIR     TP/FP/FN overlays of the worst and best images by per-image Dice
  --worst N          how many worst and best images get overlays (default 3)
  --tile N           sliding-window tile (default 512)
  --overlap N        tile overlap (default 64)
  --tta MODE         test-time augmentation: none (default), flip (4 views) or d4 (8 views)
  --ignore-index N   mask value left out of the scores (default 255)
  --threshold P      foreground probability threshold of a one-logit (binary) model (default 0.5)
  --quiet            no progress`;

/** A numeric flag within its range (OPTION_RANGES). */
function intOpt(name: string, v: string | undefined): number | undefined {
  return numberOption(name, v);
}

export const command: Command = {
  name: 'evaluate',
  summary: 'Score a SegFormer on images + masks or slides + annotations (JSON, Markdown, overlays)',
  usage: USAGE,
  async run(args) {
    const { evaluationMarkdown } = await import('../../evaluate/report.ts');
    const { evaluate } = await import('../../evaluate/segmentation.ts');
    const { values } = parseArgs({
      args,
      options: {
        model: { type: 'string' },
        images: { type: 'string' },
        masks: { type: 'string' },
        data: { type: 'string' },
        split: { type: 'string' },
        seed: { type: 'string' },
        metrics: { type: 'string' },
        json: { type: 'boolean' },
        report: { type: 'string' },
        overlays: { type: 'string' },
        worst: { type: 'string' },
        tile: { type: 'string' },
        overlap: { type: 'string' },
        tta: { type: 'string' },
        'ignore-index': { type: 'string' },
        threshold: { type: 'string' },
        quiet: { type: 'boolean' },
      },
    });
    const folders = values.images !== undefined || values.masks !== undefined;
    if (!values.model || (folders ? !values.images || !values.masks || values.data : !values.data))
      throw new UsageError(
        `evaluate: --model and either --images + --masks or --data are required\n${USAGE}`,
      );
    const split = values.split ?? 'all';
    if (split !== 'all' && split !== 'train' && split !== 'val')
      throw new UsageError(`--split: all, train or val, got ${split}`);
    if (values.split && !values.data) throw new UsageError('--split needs --data');
    const threshold = values.threshold === undefined ? undefined : Number(values.threshold);
    if (threshold !== undefined && !(threshold > 0 && threshold < 1))
      throw new UsageError(`--threshold: a probability in (0, 1), got ${values.threshold}`);
    const result = await evaluate(values.model, {
      threshold,
      images: values.images,
      masks: values.masks,
      data: values.data,
      split,
      seed: intOpt('seed', values.seed),
      tile: intOpt('tile', values.tile),
      overlap: intOpt('overlap', values.overlap),
      tta: values.tta as TestTimeAugmentation | undefined,
      ignoreIndex: intOpt('ignore-index', values['ignore-index']),
      numWorst: intOpt('worst', values.worst),
      overlays: values.overlays,
      quiet: values.quiet,
    });
    const json = `${JSON.stringify(result, null, 2)}\n`;
    if (values.metrics) {
      await mkdir(dirname(values.metrics), { recursive: true });
      await writeFile(values.metrics, json);
    }
    if (values.report) {
      await mkdir(dirname(values.report), { recursive: true });
      await writeFile(values.report, evaluationMarkdown(result));
    }
    const mcc = result.mcc != null ? `  MCC ${result.mcc.toFixed(4)}` : '';
    const line = `mIoU ${result.mIoU.toFixed(4)}  mDice ${result.mDice.toFixed(4)}  aAcc ${result.aAcc.toFixed(4)}${mcc}\n`;
    if (values.json) {
      process.stdout.write(json);
      process.stderr.write(line);
    } else process.stdout.write(line);
    return 0;
  },
};

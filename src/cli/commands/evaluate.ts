import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { evaluationMarkdown } from '../../evaluate/report.ts';
import { evaluate } from '../../evaluate/segmentation.ts';
import { type Command, UsageError } from '../command.ts';

const USAGE = `slideseg evaluate --model DIR --images DIR --masks DIR [options]

Scores a SegFormer folder on images and label masks (PNG, class index per pixel, matched by file name):
per-class and mean IoU, Dice, precision, recall, aAcc, MCC (binary), per-image scores.

  --model DIR        SegFormer checkpoint folder (config.json, model.safetensors, preprocessor_config.json)
  --images DIR       images (.png .jpg .tif)
  --masks DIR        label masks with the same base names
  --json FILE        metrics as JSON (default: printed on stdout)
  --report FILE      Markdown report
  --overlays DIR     TP/FP/FN overlays of the worst and best images by per-image Dice
  --worst N          how many worst and best images get overlays (default 3)
  --tile N           sliding-window tile (default 512)
  --overlap N        tile overlap (default 64)
  --ignore-index N   mask value left out of the scores (default 255)`;

function intOpt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`--${name}: not an integer: ${v}`);
  return n;
}

export const command: Command = {
  name: 'evaluate',
  summary: 'Score a SegFormer on images + label masks (JSON metrics, Markdown report, TP/FP/FN overlays)',
  usage: USAGE,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        model: { type: 'string' },
        images: { type: 'string' },
        masks: { type: 'string' },
        json: { type: 'string' },
        report: { type: 'string' },
        overlays: { type: 'string' },
        worst: { type: 'string' },
        tile: { type: 'string' },
        overlap: { type: 'string' },
        'ignore-index': { type: 'string' },
      },
    });
    if (!values.model || !values.images || !values.masks)
      throw new UsageError(`evaluate: --model, --images and --masks are required\n${USAGE}`);
    const result = await evaluate(values.model, {
      images: values.images,
      masks: values.masks,
      tile: intOpt('tile', values.tile),
      overlap: intOpt('overlap', values.overlap),
      ignoreIndex: intOpt('ignore-index', values['ignore-index']),
      numWorst: intOpt('worst', values.worst),
      overlays: values.overlays,
    });
    const json = `${JSON.stringify(result, null, 2)}\n`;
    if (values.json) {
      await mkdir(dirname(values.json), { recursive: true });
      await writeFile(values.json, json);
    }
    if (values.report) {
      await mkdir(dirname(values.report), { recursive: true });
      await writeFile(values.report, evaluationMarkdown(result));
    }
    if (!values.json) process.stdout.write(json);
    const mcc = result.mcc != null ? `  MCC ${result.mcc.toFixed(4)}` : '';
    process.stderr.write(
      `mIoU ${result.mIoU.toFixed(4)}  mDice ${result.mDice.toFixed(4)}  aAcc ${result.aAcc.toFixed(4)}${mcc}\n`,
    );
    return 0;
  },
};

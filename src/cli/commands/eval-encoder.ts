import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';
import { numberOption } from '../options.ts';

const USAGE = `slideseg eval-encoder --encoder DIR|model.onnx --data DIR|manifest.csv --out DIR [options]

Judges a frozen image encoder as kaiko-ai/eva does: embeddings computed once (cached in OUT/embeddings with
OUT/manifest.json), a probe trained --runs times with different seeds (AdamW, cross-entropy, early stopping on
the validation loss), OUT/results.json with mean and standard deviation of accuracy, balanced accuracy,
macro F1 and AUROC on the val and test splits, and every run's values.

  --encoder PATH      SegFormer/MiT checkpoint folder or ONNX image encoder (NCHW float32 in; [N,D] or [N,D,h,w] out)
  --data PATH         DIR/<class>/*.png, or a CSV of path,label[,split] (path: image, or slide.svs#x,y,w,h[,level])
  --out DIR           results.json (and the embedding cache unless --cache)
  --cache DIR         embedding cache folder
  --pooling last|multi  MiT: pool the last stage (default) or concatenate every stage's pooled features
  --size N            resize every patch to N×N first
  --head linear|mlp   probe (default linear)
  --runs N            probe trainings with different seeds (default 5)
  --seed N            base seed (split and runs; default 0)
  --epochs N          maximum epochs (default 100)
  --patience N        early-stopping patience in epochs (default 10)
  --lr X              AdamW learning rate (default 1e-3)
  --weight-decay X    (default 1e-4)
  --batch N           mini-batch size (default 256)
  --val X / --test X  split fractions for samples without a split (default 0.2 / 0.2)

Segmentation (--task segmentation --encoder DIR --images DIR --masks DIR --out DIR): the encoder is frozen,
only the decode head trains for --steps (default 50) on random --crop (default 128) crops of 3/4 of the
images (seeded split); the rest are scored with the sliding window (--tile, --overlap): mIoU and Dice.
  --num-labels N      classes in the masks (default 2)
  --quiet             no progress
  --json              print the results as JSON`;

/** A numeric flag within its range (OPTION_RANGES). */
function num(name: string, v: string | undefined, _integer = false): number | undefined {
  return numberOption(name, v);
}

export const command: Command = {
  name: 'eval-encoder',
  summary: 'Judge a frozen encoder with linear/MLP probes (eva protocol: cached embeddings, N seeded runs)',
  usage: USAGE,
  async run(args) {
    const { evalEncoder } = await import('../../evaluate/eva.ts');
    const { evalEncoderSegmentation } = await import('../../evaluate/frozen-seg.ts');
    const { values: v } = parseArgs({
      args,
      options: {
        encoder: { type: 'string' },
        data: { type: 'string' },
        out: { type: 'string' },
        cache: { type: 'string' },
        pooling: { type: 'string' },
        size: { type: 'string' },
        head: { type: 'string' },
        runs: { type: 'string' },
        seed: { type: 'string' },
        epochs: { type: 'string' },
        patience: { type: 'string' },
        lr: { type: 'string' },
        'weight-decay': { type: 'string' },
        batch: { type: 'string' },
        val: { type: 'string' },
        test: { type: 'string' },
        task: { type: 'string' },
        images: { type: 'string' },
        masks: { type: 'string' },
        steps: { type: 'string' },
        crop: { type: 'string' },
        tile: { type: 'string' },
        overlap: { type: 'string' },
        'num-labels': { type: 'string' },
        quiet: { type: 'boolean' },
        json: { type: 'boolean' },
      },
    });
    if (v.task === 'segmentation') {
      if (!v.encoder || !v.images || !v.masks || !v.out)
        throw new UsageError(
          `eval-encoder --task segmentation: --encoder, --images, --masks and --out are required`,
        );
      const r = await evalEncoderSegmentation({
        encoder: v.encoder,
        images: v.images,
        masks: v.masks,
        out: v.out,
        numLabels: num('num-labels', v['num-labels'], true),
        steps: num('steps', v.steps, true),
        crop: num('crop', v.crop, true),
        batchSize: num('batch', v.batch, true),
        lr: num('lr', v.lr),
        seed: num('seed', v.seed, true),
        valFraction: num('val', v.val),
        tile: num('tile', v.tile, true),
        overlap: num('overlap', v.overlap, true),
        quiet: v.quiet,
      });
      if (v.json) {
        console.log(JSON.stringify(r, null, 2));
        return 0;
      }
      process.stdout.write(`mIoU ${r.mIoU.toFixed(4)}  mDice ${r.mDice.toFixed(4)}\n`);
      return 0;
    }
    if (v.task && v.task !== 'classification')
      throw new UsageError(`--task must be classification or segmentation, got ${v.task}`);
    if (!v.encoder || !v.data || !v.out)
      throw new UsageError(`eval-encoder: --encoder, --data and --out are required\n${USAGE}`);
    if (v.pooling && v.pooling !== 'last' && v.pooling !== 'multi')
      throw new UsageError('--pooling must be last or multi');
    if (v.head && v.head !== 'linear' && v.head !== 'mlp')
      throw new UsageError('--head must be linear or mlp');
    const r = await evalEncoder({
      encoder: v.encoder,
      data: v.data,
      out: v.out,
      cache: v.cache,
      pooling: v.pooling as 'last' | 'multi' | undefined,
      size: num('size', v.size, true),
      runs: num('runs', v.runs, true),
      seed: num('seed', v.seed, true),
      valFraction: num('val', v.val),
      testFraction: num('test', v.test),
      probe: {
        head: v.head as 'linear' | 'mlp' | undefined,
        maxEpochs: num('epochs', v.epochs, true),
        patience: num('patience', v.patience, true),
        lr: num('lr', v.lr),
        weightDecay: num('weight-decay', v['weight-decay']),
        batchSize: num('batch', v.batch, true),
      },
      quiet: v.quiet,
    });
    if (v.json) {
      console.log(JSON.stringify(r, null, 2));
      return 0;
    }
    for (const split of ['val', 'test'] as const) {
      for (const [name, s] of Object.entries(r.metrics[split][0] ?? {})) {
        const f = (x: number | null) => (x == null ? '—' : x.toFixed(4));
        process.stdout.write(`${name.padEnd(24)} ${f(s.mean)} ± ${f(s.stdev)}\n`);
      }
    }
    return 0;
  },
};

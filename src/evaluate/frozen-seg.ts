/**
 * `eval-encoder --task segmentation`: the encoder of a SegFormer/MiT folder is frozen (its variables get no
 * gradient and run in eval mode), only the all-MLP decode head is trained for a few steps on image/mask
 * folders, and the held-out images are scored with the sliding window (mIoU, Dice).
 *
 * The forward runs in eval mode so the frozen encoder has no drop path; the decode head's BatchNorm then uses
 * its running statistics (a fixed affine map with trainable scale and shift), a simplification of mmseg's
 * frozen-backbone recipe that keeps the encoder's features exactly those being judged.
 */

import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../core/atomic-write.ts';
import { argmaxLabels, normaliseImage, slidingWindowProbabilities } from '../core/sliding.ts';
import { ready, tf } from '../engine/index.ts';
import { buildLoss } from '../losses/registry.ts';
import { ConfusionMatrix } from '../metrics/index.ts';
import {
  defaultPreprocessorConfig,
  loadPreprocessorConfig,
  loadSegformer,
} from '../models/segformer/index.ts';
import { segformerKeys } from '../models/segformer/keys.ts';
import { tileModelOf } from '../models/segformer/tile-model.ts';
import { AdamW } from '../optim/adamw.ts';
import { runTrainingLoop } from '../optim/loop.ts';
import { augment } from '../patching/augment.ts';
import { listPairs, loadPair, splitNames } from '../patching/pairs.ts';
import { createRng, mixSeed } from '../patching/random.ts';
import { normalisationOf } from './normalisation.ts';

export interface FrozenSegOptions {
  encoder: string;
  images: string;
  masks: string;
  out: string;
  numLabels?: number;
  steps?: number;
  batchSize?: number;
  crop?: number;
  lr?: number;
  valFraction?: number;
  seed?: number;
  tile?: number;
  overlap?: number;
  ignoreIndex?: number;
  quiet?: boolean;
}

export interface FrozenSegResults {
  task: 'segmentation';
  encoder: string;
  split: { train: string[]; val: string[] };
  steps: number;
  losses: number[];
  mIoU: number;
  mDice: number;
  iou: (number | null)[];
  dice: (number | null)[];
  /** max |Δ| over encoder weights before/after training: 0 proves the encoder stayed frozen. */
  encoderChange: number;
}

export async function evalEncoderSegmentation(o: FrozenSegOptions): Promise<FrozenSegResults> {
  await ready();
  const C = o.numLabels ?? 2;
  const ignore = o.ignoreIndex ?? 255;
  const steps = o.steps ?? 50;
  const B = o.batchSize ?? 4;
  const crop = o.crop ?? 128;
  const seed = o.seed ?? 0;
  const pairs = await listPairs(o.images, o.masks);
  const split = splitNames(
    pairs.map((p) => p.name),
    o.valFraction ?? 0.25,
    seed,
  );
  if (split.train.length === 0 || split.val.length === 0)
    throw new Error(`${o.images}: need at least 2 image/mask pairs (training and held-out)`);
  const byName = new Map(pairs.map((p) => [p.name, p]));
  const train = await Promise.all(split.train.map((n) => loadPair(byName.get(n)!, C, ignore)));
  const val = await Promise.all(split.val.map((n) => loadPair(byName.get(n)!, C, ignore)));
  const { model } = await loadSegformer(o.encoder, { allowPartial: true, numLabels: C, seed });
  const pre = existsSync(join(o.encoder, 'preprocessor_config.json'))
    ? await loadPreprocessorConfig(o.encoder)
    : defaultPreprocessorConfig();
  const norm = normalisationOf(pre);
  const named = model.namedWeights();
  const decoder = new Set(model.decoderVariables());
  const params = new Map([...named].filter(([, v]) => decoder.has(v)));
  const encoderKeys = [...named.keys()].filter((k) => k.startsWith(segformerKeys.encoderPrefix));
  const before = new Map(encoderKeys.map((k) => [k, named.get(k)!.dataSync().slice() as Float32Array]));
  const lr = o.lr ?? 1e-3;
  const opt = new AdamW([{ params }], { lr, weightDecay: 0.01 });
  const loss = buildLoss([{ name: 'ce' }], C, ignore);
  const losses: number[] = [];
  try {
    // The decode head alone learns, at a constant rate, in memory: no checkpoints, no log file.
    await runTrainingLoop({
      label: 'decoder',
      opt,
      schedule: { kind: 'constant', baseLr: lr, totalSteps: steps },
      steps,
      clipGradNorm: null,
      logEvery: steps,
      quiet: o.quiet,
      log: () => {},
      microBatch: async (step, _k, acc) => {
        const rng = createRng(mixSeed(seed, step));
        const xs = new Float32Array(B * crop * crop * 3);
        const ys = new Int32Array(B * crop * crop);
        for (let b = 0; b < B; b++) {
          const s = augment(
            train[rng.int(train.length)]!,
            { crop, hflip: true, vflip: true, rot90: true, ignoreIndex: ignore },
            rng,
          );
          const x = normaliseImage(s.image, crop, crop, norm);
          xs.set(x.dataSync(), b * crop * crop * 3);
          x.dispose();
          ys.set(s.mask, b * crop * crop);
        }
        const x = tf.tensor4d(xs, [B, crop, crop, 3]);
        const y = tf.tensor3d(ys, [B, crop, crop], 'int32');
        const { value, grads } = tf.variableGrads(() => {
          const logits = model.forward(x, { training: false }).logits;
          return loss(tf.image.resizeBilinear(logits, [crop, crop], false, true), y);
        }, [...params.values()]);
        const byName = new Map<string, tf.Tensor>();
        for (const [k, v] of params) if (grads[v.name]) byName.set(k, grads[v.name]!);
        const lv = value.dataSync()[0]!;
        tf.dispose([x, y, value, ...Object.values(grads).filter((g) => ![...byName.values()].includes(g))]);
        losses.push(lv);
        acc.addLoss(lv);
        acc.addGradients(byName);
      },
    });
    const cm = new ConfusionMatrix(C, { ignoreIndex: ignore });
    for (const s of val) {
      const side = Math.max(s.width, s.height);
      const tile = Math.min(o.tile ?? 512, side);
      const probs = await slidingWindowProbabilities(tileModelOf(model), s.image, s.width, s.height, {
        tile,
        overlap: Math.min(o.overlap ?? 64, tile - 1),
        norm,
      });
      cm.update(argmaxLabels(probs, C), s.mask);
    }
    const r = cm.compute();
    let encoderChange = 0;
    for (const k of encoderKeys) {
      const now = named.get(k)!.dataSync();
      const was = before.get(k)!;
      for (let i = 0; i < was.length; i++)
        encoderChange = Math.max(encoderChange, Math.abs(now[i]! - was[i]!));
    }
    const result: FrozenSegResults = {
      task: 'segmentation',
      encoder: o.encoder,
      split,
      steps,
      losses,
      mIoU: r.mIoU,
      mDice: r.mDice,
      iou: r.iou,
      dice: r.dice,
      encoderChange,
    };
    await mkdir(o.out, { recursive: true });
    const file = join(o.out, 'results.json');
    await writeJsonAtomic(file, result);
    return result;
  } finally {
    opt.dispose();
    model.dispose();
  }
}

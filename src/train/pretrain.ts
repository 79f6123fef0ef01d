/**
 * `slideseg pretrain`: SupCon (or SimCLR without labels) pretraining of the MiT encoder on patches.
 *
 * Each step draws `batchSize` patches, makes two augmented views of each, runs the encoder on all 2B views,
 * average-pools the last stage, projects to 128-d with a 2-layer head, L2-normalises and applies `supConLoss`.
 * The result is an encoder-checkpoint folder (config.json as SegformerForImageClassification + model.safetensors
 * with only `segformer.encoder.*` keys) that `slideseg train` takes as `model.encoder`, plus the projection head.
 *
 * Reproducibility: every random draw of step s (patches, views, drop path) comes from generators seeded by
 * (seed, s), so a resumed run sees exactly what an uninterrupted one would.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { normaliseImage } from '../core/sliding.ts';
import { tf } from '../engine/index.ts';
import { writeSafetensors } from '../io/safetensors-file.ts';
import { supConLoss } from '../losses/index.ts';
import { segformerStateDict } from '../models/segformer/checkpoint.ts';
import type { SegformerConfig, SegformerPresetName } from '../models/segformer/config.ts';
import { serializeConfig } from '../models/segformer/config.ts';
import { readSegformerConfig } from '../models/segformer/config-file.ts';
import { copyEncoderWeights } from '../models/segformer/encoder-weights.ts';
import { Segformer, segformerPreset, trainingPreprocessorConfig } from '../models/segformer/index.ts';
import { segformerKeys } from '../models/segformer/keys.ts';
import { AdamW, type ParamGroup } from '../optim/adamw.ts';
import { commitFolder } from '../optim/checkpoint.ts';
import { loopSettings, runTrainingLoop, startRun } from '../optim/loop.ts';
import type { LogRecord } from '../optim/metrics-log.ts';
import { createRng, mixSeed } from '../patching/random.ts';
import * as viz from '../viz/index.ts';
import { labelSource, type PretrainConfig } from './pretrain-config.ts';
import { openPatchSource, streamSeed, twoViews } from './pretrain-data.ts';
import { HEAD_FILE, ProjectionHead } from './pretrain-head.ts';

export interface PretrainOptions {
  /** Continue from `<out>/checkpoints/latest.json` if it exists. */
  resume?: boolean;
  /** Stop (after saving) once this step is reached, as if interrupted: for tests and time-boxed runs. */
  stopAtStep?: number;
  quiet?: boolean;
}

export interface PretrainResult {
  out: string;
  step: number;
  /** The delivered encoder folder (`<out>/encoder`), once every step is done; null when stopped early. */
  encoder: string | null;
  /** Mean loss of the last logged interval. */
  lastLoss: number | null;
}

const ENCODER_PREFIX = segformerKeys.encoderPrefix;
/** The pretraining model computes the decode head too (its forward always does), so keep it tiny. */
const SCRATCH_DECODER_SIZE = 4;

const PREPROCESSOR = trainingPreprocessorConfig();

/** The MiT config of the run: a preset with overrides, or the config of `model.from`. */
async function encoderConfig(cfg: PretrainConfig): Promise<SegformerConfig> {
  const extra = {
    ...(cfg.model.dropPathRate != null ? { drop_path_rate: cfg.model.dropPathRate } : {}),
    ...(cfg.model.overrides ?? {}),
  };
  if (cfg.model.from) {
    const base = await readSegformerConfig(join(cfg.model.from, 'config.json'));
    return { ...base, ...extra } as SegformerConfig;
  }
  return segformerPreset(cfg.model.preset as SegformerPresetName, extra);
}

/** The config.json of an encoder checkpoint: the MiT fields, as Hugging Face's SegformerForImageClassification. */
export function encoderCheckpointConfig(config: SegformerConfig): SegformerConfig {
  return { ...config, architectures: ['SegformerForImageClassification'], model_type: 'segformer' };
}

/**
 * Writes an encoder checkpoint: config.json (SegformerForImageClassification, the MiT fields of `config`),
 * model.safetensors with only `segformer.encoder.*` keys (HF names, PyTorch layouts), preprocessor_config.json.
 */
export async function saveEncoder(model: Segformer, config: SegformerConfig, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const encoder = segformerStateDict(model).filter(([k]) => k.startsWith(ENCODER_PREFIX));
  await writeSafetensors(join(dir, 'model.safetensors'), encoder, { format: 'pt' });
  await writeFile(join(dir, 'config.json'), serializeConfig(encoderCheckpointConfig(config)));
  await writeFile(join(dir, 'preprocessor_config.json'), `${JSON.stringify(PREPROCESSOR, null, 2)}\n`);
}

function paramGroups(model: Segformer, head: ProjectionHead, cfg: PretrainConfig): ParamGroup[] {
  const trainable = new Set(model.encoderVariables());
  const decay = new Map<string, tf.Variable>();
  const noDecay = new Map<string, tf.Variable>();
  for (const [key, v] of model.namedWeights()) {
    if (!trainable.has(v)) continue;
    (cfg.optim.noDecayOnNorms && /norm/.test(key) ? noDecay : decay).set(key, v);
  }
  for (const [key, v] of head.vars) decay.set(key, v);
  return [{ params: decay }, { params: noDecay, weightDecay: 0 }];
}

/** The 2B views as one normalised NHWC batch. */
function viewBatch(views: { image: Uint8Array }[], size: number): tf.Tensor4D {
  const n = size * size * 3;
  const xs = new Float32Array(views.length * n);
  views.forEach((v, i) => {
    const x = normaliseImage(v.image, size, size);
    xs.set(x.dataSync(), i * n);
    x.dispose();
  });
  return tf.tensor4d(xs, [views.length, size, size, 3]);
}

/**
 * L2-normalised projections of the views, shaped [B, 2, dim] for `supConLoss` (x holds all first views, then all
 * second views).
 */
export function contrastiveFeatures(
  model: Segformer,
  head: ProjectionHead,
  x: tf.Tensor4D,
  opts: { training: boolean; seed?: number },
): tf.Tensor3D {
  return tf.tidy(() => {
    const { hiddenStates } = model.forward(x, { ...opts, outputHiddenStates: true });
    const last = hiddenStates![hiddenStates!.length - 1]!;
    const pooled = tf.mean(last, [1, 2]) as tf.Tensor2D;
    const z = head.apply(pooled);
    // F.normalize: z / max(||z||, 1e-12).
    const zn = tf.div(z, tf.maximum(tf.norm(z, 'euclidean', 1, true), 1e-12));
    const b = x.shape[0] / 2;
    return tf.transpose(tf.reshape(zn, [2, b, head.outDim]), [1, 0, 2]) as tf.Tensor3D;
  });
}

/**
 * Stages whose spatial-reduction attention sees a single key token at this patch size: softmax over one key is
 * constantly 1, so their query and key weights get no gradient at all.
 */
export function singleKeyStages(config: SegformerConfig, patch: number): number[] {
  const out: number[] = [];
  let side = patch;
  for (let i = 0; i < config.num_encoder_blocks; i++) {
    const k = config.patch_sizes[i]!;
    const s = config.strides[i]!;
    side = Math.floor((side + 2 * Math.floor(k / 2) - k) / s) + 1;
    const sr = config.sr_ratios[i]!;
    const keys = sr > 1 ? Math.floor(side / sr) ** 2 : side * side;
    if (keys <= 1) out.push(i);
  }
  return out;
}

async function writeCurves(out: string, history: LogRecord[]): Promise<void> {
  if (history.length === 0) return;
  await mkdir(join(out, 'curves'), { recursive: true });
  const x = history.map((r) => r.step);
  for (const [file, key, title] of [
    ['loss', 'loss', 'contrastive loss'],
    ['lr', 'lr', 'learning rate'],
  ] as const) {
    const png = await viz.plotCurves([{ name: key, x, y: history.map((r) => r[key] as number) }], {
      title,
      xLabel: 'step',
      yLabel: title,
    });
    await writeFile(join(out, 'curves', `${file}.png`), png);
  }
}

export async function pretrain(cfg: PretrainConfig, opts: PretrainOptions = {}): Promise<PretrainResult> {
  const { log, backend } = await startRun(cfg.out, opts.quiet);
  await writeFile(join(cfg.out, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`);

  const source = await openPatchSource(cfg);
  const mode = labelSource(cfg) === 'none' ? 'SimCLR' : 'SupCon';
  log(`data: ${source.description}; ${mode}`);

  // Model: the encoder we train, with a scratch-sized decode head we never use.
  const config = await encoderConfig(cfg);
  const model = new Segformer({ ...config, decoder_hidden_size: SCRATCH_DECODER_SIZE }, { seed: cfg.seed });
  if (cfg.model.from)
    log(`encoder: ${await copyEncoderWeights(model, cfg.model.from)} tensors from ${cfg.model.from}`);
  const frozen = singleKeyStages(config, cfg.patch);
  if (frozen.length > 0)
    log(
      `warning: at patch ${cfg.patch} px the attention of stage(s) ${frozen.join(', ')} sees one key token, so ` +
        'their query/key weights learn nothing; use a larger patch (≥ 64 for the MiT presets)',
    );
  const D = config.hidden_sizes[config.hidden_sizes.length - 1]!;
  const head = new ProjectionHead(D, cfg.head.hidden ?? D, cfg.head.dim, mixSeed(cfg.seed, 0x4ead));
  const encoderParams = model.encoderVariables().reduce((a, v) => a + v.size, 0);
  log(
    `model: MiT ${cfg.model.from ?? cfg.model.preset} encoder, ${encoderParams.toLocaleString('en')} parameters; head ${D}→${cfg.head.hidden ?? D}→${cfg.head.dim}`,
  );

  const opt = new AdamW(paramGroups(model, head, cfg), cfg.optim);
  const lossFn = supConLoss({
    temperature: cfg.loss.temperature,
    baseTemperature: cfg.loss.baseTemperature ?? cfg.loss.temperature,
    contrastMode: cfg.loss.contrastMode,
    variant: cfg.loss.variant,
  });
  const trainable = [...model.encoderVariables(), ...head.vars.values()];
  const varKey = new Map<string, string>();
  for (const [key, v] of model.namedWeights()) varKey.set(v.name, key);
  for (const [key, v] of head.vars) varKey.set(v.name, key);

  try {
    const { history, stopAt, lastLoss } = await runTrainingLoop({
      label: 'pretrain',
      ...loopSettings(cfg, opts),
      opt,
      log,
      restoreWeights: async (dir) => {
        await copyEncoderWeights(model, dir);
        await head.load(join(dir, HEAD_FILE));
      },
      saveWeights: async (dir) => {
        await saveEncoder(model, config, dir);
        await head.save(join(dir, HEAD_FILE));
      },
      state: () => ({ seed: cfg.seed }),
      microBatch: async (step, _k, acc) => {
        const rng = createRng(mixSeed(cfg.seed, step));
        const patches = await source.draw(cfg.batchSize, rng, streamSeed(cfg.seed, step), step);
        const { views, labels } = twoViews(patches, cfg, rng);
        const x = viewBatch(views, cfg.patch);
        const y = labels ? tf.tensor1d(labels, 'int32') : null;
        const dropSeed = mixSeed(cfg.seed ^ 0xd0, step);
        let step_: { value: tf.Scalar; grads: tf.NamedTensorMap };
        try {
          step_ = tf.variableGrads(
            () => lossFn(contrastiveFeatures(model, head, x, { training: true, seed: dropSeed }), y),
            trainable,
          );
        } catch (e) {
          // The wasm heap is bounded (a few GiB); running out aborts the module with no message of its own.
          if (/Aborted|out of memory/i.test((e as Error).message))
            throw new Error(
              `the ${backend} backend ran out of memory on ${2 * cfg.batchSize} views of ${cfg.patch} px: lower batchSize or patch`,
            );
          throw e;
        }
        const { value, grads: g } = step_;
        const lv = value.dataSync()[0]!;
        tf.dispose([x, value, ...(y ? [y] : [])]);
        if (!Number.isFinite(lv)) {
          tf.dispose(Object.values(g));
          throw new Error(`loss is ${lv} at step ${step}: lower optim.lr or check the data`);
        }
        acc.addLoss(lv);
        acc.addGradients(Object.entries(g).map(([name, t]) => [varKey.get(name)!, t]));
      },
    });
    await writeCurves(cfg.out, history);
    let encoder: string | null = null;
    if (stopAt === cfg.steps) {
      encoder = await commitFolder(
        cfg.out,
        'encoder',
        'encoder.json',
        async (dir) => {
          await saveEncoder(model, config, dir);
          await head.save(join(dir, HEAD_FILE));
        },
        { step: stopAt },
      );
      log(`encoder → ${encoder} (use as model.encoder in slideseg train)`);
    }
    return { out: cfg.out, step: stopAt, encoder, lastLoss };
  } finally {
    await source.close();
    opt.dispose();
    head.dispose();
    model.dispose();
  }
}

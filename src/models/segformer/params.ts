/**
 * The parameter table of SegformerForSemanticSegmentation: every Hugging Face state-dict key with its shape in
 * the file (PyTorch layout), how it is laid out in TF.js, and how a fresh one is initialised.
 */
import type { SegformerConfig } from './config.ts';
import { numLabels } from './config.ts';
import { segformerKeys as K } from './keys.ts';

/**
 * How a tensor is stored in TF.js relative to the file:
 * - linear: [out, in] in the file, [in, out] in TF.js (so x @ W needs no transpose)
 * - conv: OIHW in the file, HWIO in TF.js
 * - depthwise: [C, 1, kh, kw] in the file, [kh, kw, C, 1] in TF.js
 * - vector: 1-D, same in both
 * - count: `num_batches_tracked`, an I64 scalar in the file, an int32 scalar in TF.js
 */
export type ParamLayout = 'linear' | 'conv' | 'depthwise' | 'vector' | 'count';

/** Fresh values as Hugging Face's `_init_weights` (and PyTorch's module defaults for BatchNorm) give them. */
export type ParamInit = 'normal' | 'zeros' | 'ones';

export interface ParamSpec {
  key: string;
  /** Shape in the safetensors file (PyTorch layout). */
  fileShape: number[];
  layout: ParamLayout;
  init: ParamInit;
  trainable: boolean;
  part: 'encoder' | 'decoder';
}

/** TF.js shape for a file shape and layout. */
export function tfShape(spec: Pick<ParamSpec, 'fileShape' | 'layout'>): number[] {
  const s = spec.fileShape;
  switch (spec.layout) {
    case 'linear':
      return [s[1], s[0]];
    case 'conv':
      return [s[2], s[3], s[1], s[0]];
    case 'depthwise':
      return [s[2], s[3], s[0], 1];
    default:
      return [...s];
  }
}

/** Permutation taking the file layout to the TF.js layout (null when none is needed). */
export function toTfPerm(layout: ParamLayout): number[] | null {
  switch (layout) {
    case 'linear':
      return [1, 0];
    case 'conv':
      return [2, 3, 1, 0];
    case 'depthwise':
      return [2, 3, 0, 1];
    default:
      return null;
  }
}

/** Permutation taking the TF.js layout back to the file layout. */
export function toFilePerm(layout: ParamLayout): number[] | null {
  switch (layout) {
    case 'linear':
      return [1, 0];
    case 'conv':
      return [3, 2, 0, 1];
    case 'depthwise':
      return [2, 3, 0, 1];
    default:
      return null;
  }
}

/** All parameters in state-dict order (the order PyTorch's `state_dict()` lists them). */
export function segformerParamSpecs(config: SegformerConfig): ParamSpec[] {
  const specs: ParamSpec[] = [];
  const add = (
    part: ParamSpec['part'],
    key: string,
    fileShape: number[],
    layout: ParamLayout,
    init: ParamInit,
    trainable = true,
  ) => specs.push({ key, fileShape, layout, init, trainable, part });
  const linear = (part: ParamSpec['part'], key: string, inF: number, outF: number) => {
    add(part, `${key}.weight`, [outF, inF], 'linear', 'normal');
    add(part, `${key}.bias`, [outF], 'vector', 'zeros');
  };
  const layerNorm = (key: string, n: number) => {
    add('encoder', `${key}.weight`, [n], 'vector', 'ones');
    add('encoder', `${key}.bias`, [n], 'vector', 'zeros');
  };
  const stages = config.num_encoder_blocks;
  for (let i = 0; i < stages; i++) {
    const inC = i === 0 ? config.num_channels : config.hidden_sizes[i - 1];
    const h = config.hidden_sizes[i];
    const k = config.patch_sizes[i];
    const pe = K.patchEmbedding(i);
    add('encoder', `${pe.proj}.weight`, [h, inC, k, k], 'conv', 'normal');
    add('encoder', `${pe.proj}.bias`, [h], 'vector', 'zeros');
    layerNorm(pe.norm, h);
  }
  for (let i = 0; i < stages; i++) {
    const h = config.hidden_sizes[i];
    const sr = config.sr_ratios[i];
    const mlp = Math.trunc(h * config.mlp_ratios[i]);
    for (let j = 0; j < config.depths[i]; j++) {
      const b = K.block(i, j);
      layerNorm(b.norm1, h);
      linear('encoder', b.query, h, h);
      linear('encoder', b.key, h, h);
      linear('encoder', b.value, h, h);
      if (sr > 1) {
        add('encoder', `${b.sr}.weight`, [h, h, sr, sr], 'conv', 'normal');
        add('encoder', `${b.sr}.bias`, [h], 'vector', 'zeros');
        layerNorm(b.srNorm, h);
      }
      linear('encoder', b.attentionOutput, h, h);
      layerNorm(b.norm2, h);
      linear('encoder', b.dense1, h, mlp);
      add('encoder', `${b.dwconv}.weight`, [mlp, 1, 3, 3], 'depthwise', 'normal');
      add('encoder', `${b.dwconv}.bias`, [mlp], 'vector', 'zeros');
      linear('encoder', b.dense2, mlp, h);
    }
  }
  for (let i = 0; i < stages; i++) layerNorm(K.stageNorm(i), config.hidden_sizes[i]);

  const d = config.decoder_hidden_size;
  for (let i = 0; i < stages; i++) linear('decoder', K.decoderLinear(i), config.hidden_sizes[i], d);
  add('decoder', `${K.linearFuse}.weight`, [d, d * stages, 1, 1], 'conv', 'normal');
  add('decoder', `${K.batchNorm}.weight`, [d], 'vector', 'ones');
  add('decoder', `${K.batchNorm}.bias`, [d], 'vector', 'zeros');
  add('decoder', `${K.batchNorm}.running_mean`, [d], 'vector', 'zeros', false);
  add('decoder', `${K.batchNorm}.running_var`, [d], 'vector', 'ones', false);
  add('decoder', `${K.batchNorm}.num_batches_tracked`, [], 'count', 'zeros', false);
  const labels = numLabels(config);
  add('decoder', `${K.classifier}.weight`, [labels, d, 1, 1], 'conv', 'normal');
  add('decoder', `${K.classifier}.bias`, [labels], 'vector', 'zeros');
  return specs;
}

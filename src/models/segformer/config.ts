/**
 * SegFormer configuration: the Hugging Face `config.json` of `SegformerForSemanticSegmentation`, field for
 * field in snake_case. Unknown fields are carried through untouched so that a saved folder keeps everything the
 * original had.
 */
import { CheckpointError } from '../../core/errors.ts';

export interface SegformerConfig {
  model_type?: string;
  architectures?: string[];
  num_channels: number;
  num_encoder_blocks: number;
  depths: number[];
  sr_ratios: number[];
  hidden_sizes: number[];
  patch_sizes: number[];
  strides: number[];
  num_attention_heads: number[];
  mlp_ratios: number[];
  hidden_act: string;
  hidden_dropout_prob: number;
  attention_probs_dropout_prob: number;
  classifier_dropout_prob: number;
  initializer_range: number;
  drop_path_rate: number;
  /**
   * Kept for compatibility only: Hugging Face's SegFormer builds every LayerNorm with PyTorch's default eps
   * (1e-5) and never reads this field, so neither do we (see `LAYER_NORM_EPS`).
   */
  layer_norm_eps: number;
  decoder_hidden_size: number;
  semantic_loss_ignore_index: number;
  reshape_last_stage?: boolean;
  id2label: Record<string, string>;
  label2id: Record<string, number>;
  /** Accepted on input (as `PretrainedConfig` does); normalised away into id2label/label2id. */
  num_labels?: number;
  [extra: string]: unknown;
}

/** PyTorch's `nn.LayerNorm` default, used by every LayerNorm of the Hugging Face model. */
export const LAYER_NORM_EPS = 1e-5;
/** PyTorch's `nn.BatchNorm2d` defaults, used by the decode head. */
export const BATCH_NORM_EPS = 1e-5;
export const BATCH_NORM_MOMENTUM = 0.1;

export type SegformerPresetName = 'b0' | 'b1' | 'b2' | 'b3' | 'b4' | 'b5';

/** Official MiT variants (SegFormer paper, table 6; nvidia/mit-b* on the Hub). */
const PRESETS: Record<SegformerPresetName, { hidden: number[]; depths: number[]; decoder: number }> = {
  b0: { hidden: [32, 64, 160, 256], depths: [2, 2, 2, 2], decoder: 256 },
  b1: { hidden: [64, 128, 320, 512], depths: [2, 2, 2, 2], decoder: 256 },
  b2: { hidden: [64, 128, 320, 512], depths: [3, 4, 6, 3], decoder: 768 },
  b3: { hidden: [64, 128, 320, 512], depths: [3, 4, 18, 3], decoder: 768 },
  b4: { hidden: [64, 128, 320, 512], depths: [3, 8, 27, 3], decoder: 768 },
  b5: { hidden: [64, 128, 320, 512], depths: [3, 6, 40, 3], decoder: 768 },
};

/** The preset names, from the table (configs are checked against this, not a pattern). */
export const SEGFORMER_PRESETS = Object.keys(PRESETS) as SegformerPresetName[];

/** True when `name` is a registered preset. */
export function isSegformerPreset(name: string): name is SegformerPresetName {
  return Object.hasOwn(PRESETS, name);
}

export type SegformerOverrides = Partial<SegformerConfig> & { numLabels?: number };

/** Default labels as `PretrainedConfig` makes them: LABEL_0, LABEL_1, ... */
function defaultLabels(n: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < n; i++) out[String(i)] = `LABEL_${i}`;
  return out;
}

export function segformerPreset(
  name: SegformerPresetName,
  overrides: SegformerOverrides = {},
): SegformerConfig {
  const p = PRESETS[name];
  if (!isSegformerPreset(name) || !p)
    throw new CheckpointError(
      `unknown SegFormer preset '${name}' (expected ${SEGFORMER_PRESETS.join(', ')})`,
    );
  const { numLabels, ...rest } = overrides;
  const base: Record<string, unknown> = {
    model_type: 'segformer',
    architectures: ['SegformerForSemanticSegmentation'],
    num_channels: 3,
    num_encoder_blocks: 4,
    depths: [...p.depths],
    sr_ratios: [8, 4, 2, 1],
    hidden_sizes: [...p.hidden],
    patch_sizes: [7, 3, 3, 3],
    strides: [4, 2, 2, 2],
    num_attention_heads: [1, 2, 5, 8],
    mlp_ratios: [4, 4, 4, 4],
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.0,
    attention_probs_dropout_prob: 0.0,
    classifier_dropout_prob: 0.1,
    initializer_range: 0.02,
    drop_path_rate: 0.1,
    layer_norm_eps: 1e-6,
    decoder_hidden_size: p.decoder,
    semantic_loss_ignore_index: 255,
    reshape_last_stage: true,
    ...rest,
  };
  if (numLabels != null && rest.id2label != null && Object.keys(rest.id2label).length !== numLabels) {
    throw new CheckpointError(
      `preset ${name}: numLabels ${numLabels} disagrees with the ${Object.keys(rest.id2label).length} entries of id2label`,
    );
  }
  if (numLabels != null) base.num_labels = numLabels;
  return normalizeConfig(base, `preset ${name}`);
}

/** Number of output classes of the decode head. */
export function numLabels(config: SegformerConfig): number {
  return Object.keys(config.id2label).length;
}

/** transformers' `SegformerConfig` defaults for the per-stage lists (MiT-B0). */
const HF_STAGE_DEFAULTS = {
  depths: [2, 2, 2, 2],
  sr_ratios: [8, 4, 2, 1],
  hidden_sizes: [32, 64, 160, 256],
  patch_sizes: [7, 3, 3, 3],
  strides: [4, 2, 2, 2],
  num_attention_heads: [1, 2, 5, 8],
  mlp_ratios: [4, 4, 4, 4],
};

const STAGE_LISTS = [
  'depths',
  'sr_ratios',
  'hidden_sizes',
  'patch_sizes',
  'strides',
  'num_attention_heads',
  'mlp_ratios',
] as const;

/**
 * The one SegFormer config parser (TF.js model, checkpoints, ONNX export): validates a raw config object, fills what
 * it leaves out with transformers' `SegformerConfig` defaults (the MiT-B0 architecture, 2 labels) and id2label/
 * label2id the way `PretrainedConfig` does. `source` names the file (or preset) in error messages.
 */
export function normalizeConfig(raw: unknown, source: string): SegformerConfig {
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CheckpointError(`${source}: SegFormer config must be a JSON object`);
  }
  const c = { ...(raw as Record<string, unknown>) };
  const fail = (why: string): never => {
    throw new CheckpointError(`${source}: invalid SegFormer config: ${why}`);
  };
  if (c.model_type !== undefined && c.model_type !== 'segformer') {
    throw new CheckpointError(`${source}: model_type is '${String(c.model_type)}', expected 'segformer'`);
  }
  const defaults: Record<string, unknown> = {
    num_channels: 3,
    num_encoder_blocks: 4,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.0,
    attention_probs_dropout_prob: 0.0,
    classifier_dropout_prob: 0.1,
    initializer_range: 0.02,
    drop_path_rate: 0.1,
    layer_norm_eps: 1e-6,
    decoder_hidden_size: 256,
    semantic_loss_ignore_index: 255,
    ...HF_STAGE_DEFAULTS,
  };
  for (const [k, v] of Object.entries(defaults)) if (c[k] === undefined) c[k] = v;
  const blocks = c.num_encoder_blocks;
  if (!Number.isInteger(blocks) || (blocks as number) < 1) fail(`num_encoder_blocks ${String(blocks)}`);
  for (const key of STAGE_LISTS) {
    const v = c[key];
    if (!Array.isArray(v) || v.length !== blocks || !v.every((x) => Number.isFinite(x) && x > 0)) {
      fail(`${key} = ${JSON.stringify(v)}: '${key}' must be a list of ${String(blocks)} positive numbers`);
    }
  }
  const cfg = c as SegformerConfig;
  cfg.hidden_sizes.forEach((h, i) => {
    if (h % cfg.num_attention_heads[i] !== 0) {
      fail(`hidden size ${h} of stage ${i} is not a multiple of ${cfg.num_attention_heads[i]} heads`);
    }
  });
  if (cfg.hidden_act !== 'gelu') fail(`hidden_act '${cfg.hidden_act}' is not supported (only 'gelu')`);
  for (const key of [
    'hidden_dropout_prob',
    'attention_probs_dropout_prob',
    'classifier_dropout_prob',
    'drop_path_rate',
  ]) {
    const p = c[key];
    if (typeof p !== 'number' || !(p >= 0 && p < 1)) fail(`${key} must be in [0, 1) (got ${String(p)})`);
  }
  if (!Number.isInteger(cfg.decoder_hidden_size) || cfg.decoder_hidden_size < 1) {
    fail(`decoder_hidden_size ${String(cfg.decoder_hidden_size)}`);
  }
  if (cfg.reshape_last_stage === false) fail('reshape_last_stage=false is not supported');

  const wanted = c.num_labels;
  if (wanted != null && (!Number.isInteger(wanted) || (wanted as number) < 1)) {
    fail(`num_labels must be a positive integer (got ${String(wanted)})`);
  }
  let id2label = c.id2label as Record<string, string> | undefined;
  if (id2label != null && (typeof id2label !== 'object' || Array.isArray(id2label))) {
    fail('id2label must be an object');
  }
  // As PretrainedConfig: an explicit id2label wins over num_labels; without one, LABEL_i names are made up.
  if (id2label == null) {
    id2label = defaultLabels((wanted as number | undefined) ?? 2);
    c.label2id = undefined;
  }
  const ids = Object.keys(id2label)
    .map(Number)
    .sort((a, b) => a - b);
  if (!ids.every((id, i) => id === i))
    fail(`id2label keys must be 0..n-1 (got ${Object.keys(id2label).join(',')})`);
  c.id2label = id2label;
  if (c.label2id == null) {
    c.label2id = Object.fromEntries(Object.entries(id2label).map(([k, v]) => [v, Number(k)]));
  }
  delete c.num_labels;
  return c as SegformerConfig;
}

/** The config as written to config.json: every field kept, in the original order. */
export function serializeConfig(config: SegformerConfig): string {
  // AutoConfig needs model_type; everything else is written as it is.
  const out = config.model_type ? config : { model_type: 'segformer', ...config };
  return `${JSON.stringify(out, null, 2)}\n`;
}

/**
 * Reads a Hugging Face SegFormer checkpoint folder (config.json + model.safetensors, or a sharded
 * model.safetensors.index.json) into a validated architecture description and a weight lookup.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type SafeTensor, toFloat32 } from '../io/safetensors.ts';
import { readSafetensors } from '../io/safetensors-file.ts';

/** The `SegformerConfig` fields the architecture depends on. */
export interface SegformerArchitecture {
  numChannels: number;
  hiddenSizes: number[];
  depths: number[];
  numAttentionHeads: number[];
  srRatios: number[];
  patchSizes: number[];
  strides: number[];
  mlpRatios: number[];
  decoderHiddenSize: number;
  numLabels: number;
  /**
   * LayerNorm epsilon. Hugging Face's modeling_segformer.py builds every nn.LayerNorm with the PyTorch default
   * 1e-5 and ignores `config.layer_norm_eps`, so this is 1e-5 unless the caller overrides it.
   */
  layerNormEps: number;
  batchNormEps: number;
}

export interface SegformerCheckpoint {
  /** The parsed config.json object. */
  config: Record<string, unknown>;
  /** Weights by Hugging Face key name. */
  weights: Map<string, SafeTensor>;
}

/** Validates a config.json object; `file` names the source in error messages. */
export function parseSegformerConfig(
  config: Record<string, unknown>,
  file = 'config.json',
): SegformerArchitecture {
  const fail = (reason: string): never => {
    throw new Error(`${file}: ${reason}`);
  };
  if (config.model_type !== undefined && config.model_type !== 'segformer') {
    fail(`model_type is '${String(config.model_type)}', expected 'segformer'`);
  }
  const numBlocks = intField(config, 'num_encoder_blocks', 4, fail);
  const list = (key: string, fallback?: number[]): number[] => {
    const value = config[key] ?? fallback;
    if (
      !Array.isArray(value) ||
      value.length !== numBlocks ||
      !value.every((v) => Number.isFinite(v) && v > 0)
    ) {
      return fail(`'${key}' must be a list of ${numBlocks} positive numbers (got ${JSON.stringify(value)})`);
    }
    return value as number[];
  };
  const arch: SegformerArchitecture = {
    numChannels: intField(config, 'num_channels', 3, fail),
    hiddenSizes: list('hidden_sizes'),
    depths: list('depths'),
    numAttentionHeads: list('num_attention_heads'),
    srRatios: list('sr_ratios', [8, 4, 2, 1].slice(0, numBlocks)),
    patchSizes: list('patch_sizes', [7, 3, 3, 3].slice(0, numBlocks)),
    strides: list('strides', [4, 2, 2, 2].slice(0, numBlocks)),
    mlpRatios: list('mlp_ratios', [4, 4, 4, 4].slice(0, numBlocks)),
    decoderHiddenSize: intField(config, 'decoder_hidden_size', 256, fail),
    numLabels: numLabelsOf(config, fail),
    layerNormEps: 1e-5,
    batchNormEps: 1e-5,
  };
  arch.hiddenSizes.forEach((size, i) => {
    if (size % arch.numAttentionHeads[i]! !== 0) {
      fail(
        `hidden_sizes[${i}] = ${size} is not a multiple of num_attention_heads[${i}] = ${arch.numAttentionHeads[i]}`,
      );
    }
  });
  const act = config.hidden_act ?? 'gelu';
  if (act !== 'gelu') fail(`hidden_act '${String(act)}' is not supported (only exact 'gelu')`);
  if (config.reshape_last_stage === false) fail('reshape_last_stage = false is not supported');
  return arch;
}

function intField(
  config: Record<string, unknown>,
  key: string,
  fallback: number,
  fail: (r: string) => never,
): number {
  const value = config[key] ?? fallback;
  if (!Number.isInteger(value) || (value as number) <= 0)
    fail(`'${key}' must be a positive integer (got ${value})`);
  return value as number;
}

function numLabelsOf(config: Record<string, unknown>, fail: (r: string) => never): number {
  if (config.id2label && typeof config.id2label === 'object') {
    const n = Object.keys(config.id2label).length;
    if (n > 0) return n;
  }
  if (Number.isInteger(config.num_labels) && (config.num_labels as number) > 0)
    return config.num_labels as number;
  return fail("has neither 'id2label' nor 'num_labels'");
}

/** Reads config.json and the weights (single file or sharded index) from a checkpoint folder. */
export async function readSegformerCheckpoint(dir: string): Promise<SegformerCheckpoint> {
  const configPath = join(dir, 'config.json');
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await readFile(configPath, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`${configPath}: ${err.code === 'ENOENT' ? 'not found' : `cannot read (${err.message})`}`);
  }
  if (config == null || typeof config !== 'object' || Array.isArray(config)) {
    throw new Error(`${configPath}: not a JSON object`);
  }
  // Validate the architecture before reading (possibly large) weights.
  parseSegformerConfig(config, configPath);
  const single = join(dir, 'model.safetensors');
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(single)) return { config, weights: (await readSafetensors(single)).tensors };
  if (existsSync(index)) return { config, weights: await readShardedWeights(dir, index) };
  throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json`);
}

async function readShardedWeights(dir: string, indexPath: string): Promise<Map<string, SafeTensor>> {
  let weightMap: Record<string, string>;
  try {
    weightMap = JSON.parse(await readFile(indexPath, 'utf8')).weight_map;
  } catch (e) {
    throw new Error(`${indexPath}: cannot read (${(e as Error).message})`);
  }
  if (!weightMap || typeof weightMap !== 'object') throw new Error(`${indexPath}: no 'weight_map' object`);
  const weights = new Map<string, SafeTensor>();
  for (const shard of new Set(Object.values(weightMap))) {
    for (const [key, tensor] of (await readSafetensors(join(dir, shard))).tensors) weights.set(key, tensor);
  }
  return weights;
}

/** Looks weights up by name, checking shapes, and converts them to float32. */
export class WeightReader {
  constructor(
    private readonly weights: Map<string, SafeTensor>,
    private readonly source = 'weights',
  ) {}

  get(key: string, shape: number[]): Float32Array {
    const tensor = this.weights.get(key);
    if (!tensor) throw new Error(`${this.source}: missing tensor '${key}'`);
    if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${this.source}: tensor '${key}' has shape [${tensor.shape}], expected [${shape}]`);
    }
    return toFloat32(tensor, `${this.source}: tensor '${key}'`);
  }
}

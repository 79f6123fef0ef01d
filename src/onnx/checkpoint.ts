/**
 * Reads a Hugging Face SegFormer checkpoint folder (config.json + model.safetensors, or a sharded
 * model.safetensors.index.json) into a validated architecture description and a weight lookup.
 */

import { join } from 'node:path';
import { CheckpointError } from '../core/errors.ts';
import { type SafeTensor, toFloat32 } from '../io/safetensors.ts';
import { CONFIG_FILE, readCheckpointTensors } from '../models/segformer/checkpoint.ts';
import { BATCH_NORM_EPS, LAYER_NORM_EPS, normalizeConfig, numLabels } from '../models/segformer/config.ts';
import { readSegformerConfig } from '../models/segformer/config-file.ts';

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

/**
 * The architecture of a config.json object, parsed by the one SegFormer config parser (`normalizeConfig`: the same
 * defaults and checks as the TF.js model and the checkpoint loader); `file` names the source in error messages.
 */
export function parseSegformerConfig(
  config: Record<string, unknown>,
  file = 'config.json',
): SegformerArchitecture {
  const c = normalizeConfig(config, file);
  return {
    numChannels: c.num_channels,
    hiddenSizes: c.hidden_sizes,
    depths: c.depths,
    numAttentionHeads: c.num_attention_heads,
    srRatios: c.sr_ratios,
    patchSizes: c.patch_sizes,
    strides: c.strides,
    mlpRatios: c.mlp_ratios,
    decoderHiddenSize: c.decoder_hidden_size,
    numLabels: numLabels(c),
    layerNormEps: LAYER_NORM_EPS,
    batchNormEps: BATCH_NORM_EPS,
  };
}

/** Reads config.json and the weights (single file or sharded index) with the checkpoint loader's own readers. */
export async function readSegformerCheckpoint(dir: string): Promise<SegformerCheckpoint> {
  // Parsed (and so validated) before reading the possibly large weights.
  const config = await readSegformerConfig(join(dir, CONFIG_FILE));
  const { tensors } = await readCheckpointTensors(dir);
  return { config: config as unknown as Record<string, unknown>, weights: tensors };
}

/** Looks weights up by name, checking shapes, and converts them to float32. */
export class WeightReader {
  constructor(
    private readonly weights: Map<string, SafeTensor>,
    private readonly source = 'weights',
  ) {}

  get(key: string, shape: number[]): Float32Array {
    const tensor = this.weights.get(key);
    if (!tensor) throw new CheckpointError(`${this.source}: missing tensor '${key}'`);
    if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
      throw new CheckpointError(
        `${this.source}: tensor '${key}' has shape [${tensor.shape}], expected [${shape}]`,
      );
    }
    return toFloat32(tensor, `${this.source}: tensor '${key}'`);
  }
}

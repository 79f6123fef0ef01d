/**
 * Every Hugging Face state-dict key of `SegformerForSemanticSegmentation`, spelled once. Module paths follow the
 * module tree as transformers names its attributes (`segformer.encoder.block.{stage}.{index}.attention.self.query`);
 * a parameter is its module path plus PyTorch's attribute name (`weight`, `bias`, `running_mean`, …). The parameter
 * table (`params.ts`), the TF.js forward pass (`model.ts`) and the ONNX graph builder (`onnx/export-segformer.ts`) all
 * take their names from here.
 */
/** transformers' `base_model_prefix`: a bare `SegformerModel` checkpoint has its keys without it. */
const BASE = 'segformer';
const ENCODER = `${BASE}.encoder`;
const DECODER = 'decode_head';

/** The modules of one transformer block (`SegformerLayer`). */
export interface BlockKeys {
  norm1: string;
  query: string;
  key: string;
  value: string;
  /** Sequence-reduction conv and its LayerNorm (only where sr_ratio > 1). */
  sr: string;
  srNorm: string;
  attentionOutput: string;
  norm2: string;
  dense1: string;
  dwconv: string;
  dense2: string;
}

export const segformerKeys = {
  /** Overlapping patch embedding of a stage: conv `proj` and its LayerNorm. */
  patchEmbedding: (stage: number) => ({
    proj: `${ENCODER}.patch_embeddings.${stage}.proj`,
    norm: `${ENCODER}.patch_embeddings.${stage}.layer_norm`,
  }),
  block(stage: number, index: number): BlockKeys {
    const b = `${ENCODER}.block.${stage}.${index}`;
    const self = `${b}.attention.self`;
    return {
      norm1: `${b}.layer_norm_1`,
      query: `${self}.query`,
      key: `${self}.key`,
      value: `${self}.value`,
      sr: `${self}.sr`,
      srNorm: `${self}.layer_norm`,
      attentionOutput: `${b}.attention.output.dense`,
      norm2: `${b}.layer_norm_2`,
      dense1: `${b}.mlp.dense1`,
      dwconv: `${b}.mlp.dwconv.dwconv`,
      dense2: `${b}.mlp.dense2`,
    };
  },
  /** The LayerNorm closing a stage. */
  stageNorm: (stage: number) => `${ENCODER}.layer_norm.${stage}`,
  /** The decoder's per-stage projection to the decoder width. */
  decoderLinear: (stage: number) => `${DECODER}.linear_c.${stage}.proj`,
  linearFuse: `${DECODER}.linear_fuse`,
  batchNorm: `${DECODER}.batch_norm`,
  classifier: `${DECODER}.classifier`,
  /** Key prefixes that tell an encoder-only or bare checkpoint apart. */
  basePrefix: `${BASE}.`,
  encoderPrefix: `${ENCODER}.`,
  decoderPrefix: `${DECODER}.`,
} as const;

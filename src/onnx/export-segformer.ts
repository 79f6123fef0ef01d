/**
 * Builds the ONNX graph of Hugging Face's `SegformerForSemanticSegmentation` straight from a checkpoint.
 *
 * Input `pixel_values` float32 [batch, C, height, width]; output `logits` float32
 * [batch, num_labels, ceil(height/4), ceil(width/4)]. Batch, height and width are symbolic: every reshape takes
 * its spatial sizes from Shape nodes, so any input size works, odd ones included.
 *
 * Layout inside the graph follows the PyTorch module: encoder stages work on tokens [B, N, C] (Linear = MatMul
 * with the pre-transposed weight + Add), convolutions on NCHW maps. Two exact algebraic rewrites are applied:
 * the attention scale 1/sqrt(head_dim) is folded into the query projection, and the decoder's eval-mode
 * BatchNorm is folded into the bias-free 1×1 fuse convolution.
 */

import { writeFileAtomic } from '../core/atomic-write.ts';
import { type BlockKeys, segformerKeys as K } from '../models/segformer/keys.ts';
import {
  parseSegformerConfig,
  readSegformerCheckpoint,
  type SegformerArchitecture,
  type SegformerCheckpoint,
  WeightReader,
} from './checkpoint.ts';
import { float, GraphBuilder } from './graph-builder.ts';

export interface ExportOptions {
  /**
   * Store weights as float16 (half the file size). The graph still computes in float32: each weight is a
   * float16 initializer followed by a Cast, which ONNX Runtime constant-folds when the session is created.
   */
  fp16?: boolean;
  /** ONNX opset, ≥ 17 (LayerNormalization). From 20 on, GELU is the Gelu op; below, exact Erf form. */
  opset?: number;
  /**
   * Fold each stage's decoder projection into the fuse convolution (exact algebra, float rounding aside):
   * skips the n·d → d convolution at stage-1 resolution, roughly halving MiT-B0's work. Off by default so the
   * graph mirrors the PyTorch module.
   */
  foldDecoder?: boolean;
}

export interface ExportResult {
  bytes: number;
  parameters: number;
  nodes: number;
  opset: number;
  numLabels: number;
}

const MIN_OPSET = 17;
const MAX_OPSET = 21;

/** Builds the serialised ONNX model of a checkpoint held in memory. */
export function buildSegformerOnnx(
  checkpoint: SegformerCheckpoint,
  options: ExportOptions = {},
  source = 'checkpoint',
): { model: Uint8Array; result: ExportResult } {
  const opset = options.opset ?? MIN_OPSET;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new Error(`opset ${opset} is not supported (use ${MIN_OPSET}..${MAX_OPSET})`);
  }
  const arch = parseSegformerConfig(checkpoint.config, `${source}/config.json`);
  const weights = new WeightReader(checkpoint.weights, `${source} weights`);
  const g = new GraphBuilder({ fp16Weights: options.fp16 });
  new SegformerGraph(g, arch, weights, opset, options.foldDecoder ?? false).build();
  const model = g.encode({
    graphName: 'SegformerForSemanticSegmentation',
    opset,
    docString: 'SegFormer semantic segmentation exported by slideseg; logits at stride 4',
    metadata: {
      num_labels: String(arch.numLabels),
      id2label: JSON.stringify(checkpoint.config.id2label ?? {}),
    },
  });
  return {
    model,
    result: {
      bytes: model.byteLength,
      parameters: g.parameterCount,
      nodes: g.nodeCount,
      opset,
      numLabels: arch.numLabels,
    },
  };
}

/** Exports a checkpoint folder (or one held in memory) to an .onnx file, written atomically. */
export async function exportSegformerOnnx(
  src: string | SegformerCheckpoint,
  out: string,
  options: ExportOptions = {},
): Promise<ExportResult> {
  const checkpoint = typeof src === 'string' ? await readSegformerCheckpoint(src) : src;
  const { model, result } = buildSegformerOnnx(
    checkpoint,
    options,
    typeof src === 'string' ? src : 'checkpoint',
  );
  try {
    await writeFileAtomic(out, model);
  } catch (e) {
    throw new Error(`${out}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return result;
}

/** Emits the graph stage by stage; each method mirrors one Hugging Face module. */
class SegformerGraph {
  constructor(
    private readonly g: GraphBuilder,
    private readonly arch: SegformerArchitecture,
    private readonly w: WeightReader,
    private readonly opset: number,
    private readonly foldDecoder: boolean,
  ) {}

  build(): string {
    const { g, arch } = this;
    let features = g.input('pixel_values', ['batch', arch.numChannels, 'height', 'width']);
    const stages: { map: string; channels: number }[] = [];
    let inChannels = arch.numChannels;
    for (let s = 0; s < arch.hiddenSizes.length; s++) {
      features = this.encoderStage(s, features, inChannels);
      inChannels = arch.hiddenSizes[s]!;
      stages.push({ map: features, channels: inChannels });
    }
    const logits = this.decodeHead(stages);
    g.output(logits, ['batch', arch.numLabels, 'logits_height', 'logits_width']);
    return logits;
  }

  /** Patch embedding → blocks → stage LayerNorm; returns the NCHW stage output. */
  private encoderStage(s: number, input: string, inChannels: number): string {
    const { g, arch } = this;
    const c = arch.hiddenSizes[s]!;
    const k = arch.patchSizes[s]!;
    const pe = K.patchEmbedding(s);
    const embedded = this.conv(pe.proj, input, inChannels, c, k, arch.strides[s]!, Math.floor(k / 2));
    // [H, W] of this stage, taken from the data so that every input size works.
    const hw = g.node('Shape', [embedded], { start: 2, end: 4 });
    let tokens = this.layerNorm(pe.norm, this.mapToTokens(embedded, c), c);
    for (let j = 0; j < arch.depths[s]!; j++) tokens = this.block(s, j, tokens, hw);
    tokens = this.layerNorm(K.stageNorm(s), tokens, c);
    return this.tokensToMap(tokens, c, hw);
  }

  private block(s: number, j: number, tokens: string, hw: string): string {
    const { g, arch } = this;
    const c = arch.hiddenSizes[s]!;
    const b = K.block(s, j);
    const attended = this.attention(b, this.layerNorm(b.norm1, tokens, c), s, hw);
    tokens = g.node('Add', [attended, tokens]);
    const hidden = Math.trunc(c * arch.mlpRatios[s]!);
    const normed = this.layerNorm(b.norm2, tokens, c);
    let mlp = this.linear(b.dense1, normed, c, hidden);
    const map = this.tokensToMap(mlp, hidden, hw);
    const dw = this.conv(b.dwconv, map, hidden, hidden, 3, 1, 1, hidden);
    mlp = this.gelu(this.mapToTokens(dw, hidden));
    mlp = this.linear(b.dense2, mlp, hidden, c);
    return g.node('Add', [mlp, tokens]);
  }

  /** Efficient self-attention: keys/values come from the sequence reduced by a strided conv. */
  private attention(b: BlockKeys, tokens: string, s: number, hw: string): string {
    const { g, arch } = this;
    const c = arch.hiddenSizes[s]!;
    const heads = arch.numAttentionHeads[s]!;
    const headDim = c / heads;
    const sr = arch.srRatios[s]!;
    const query = this.linear(b.query, tokens, c, c, 1 / Math.sqrt(headDim));
    let kvSource = tokens;
    if (sr > 1) {
      const reduced = this.conv(b.sr, this.tokensToMap(tokens, c, hw), c, c, sr, sr, 0);
      kvSource = this.layerNorm(b.srNorm, this.mapToTokens(reduced, c), c);
    }
    const key = this.linear(b.key, kvSource, c, c);
    const value = this.linear(b.value, kvSource, c, c);
    const splitHeads = g.int64s([0, -1, heads, headDim]);
    const q = g.node('Transpose', [g.node('Reshape', [query, splitHeads])], { perm: [0, 2, 1, 3] });
    const kT = g.node('Transpose', [g.node('Reshape', [key, splitHeads])], { perm: [0, 2, 3, 1] });
    const v = g.node('Transpose', [g.node('Reshape', [value, splitHeads])], { perm: [0, 2, 1, 3] });
    const probs = g.node('Softmax', [g.node('MatMul', [q, kT])], { axis: -1 });
    const context = g.node('Transpose', [g.node('MatMul', [probs, v])], { perm: [0, 2, 1, 3] });
    const merged = g.node('Reshape', [context, g.int64s([0, 0, c])]);
    return this.linear(b.attentionOutput, merged, c, c);
  }

  /** All-MLP head: per-stage Linear → bilinear resize to stage-1 size → concat [c4..c1] → fuse → classify. */
  private decodeHead(stages: { map: string; channels: number }[]): string {
    const { g, arch } = this;
    const d = arch.decoderHiddenSize;
    const n = stages.length;
    const fuse = this.batchNormFoldedFuse(n * d);
    const hidden = this.foldDecoder ? this.foldedFusion(stages, fuse) : this.faithfulFusion(stages, fuse);
    const classifier = this.w.get(`${K.classifier}.weight`, [arch.numLabels, d, 1, 1]);
    const classifierBias = this.w.get(`${K.classifier}.bias`, [arch.numLabels]);
    return g.node(
      'Conv',
      [
        g.node('Relu', [hidden]),
        g.weight(`${K.classifier}.weight`, classifier, [arch.numLabels, d, 1, 1]),
        g.weight(`${K.classifier}.bias`, classifierBias, [arch.numLabels]),
      ],
      {},
      'logits',
    );
  }

  /**
   * linear_fuse (1×1, no bias) followed by eval-mode BatchNorm, as one affine map [d, fanIn] + bias:
   * BN is per-channel y = (x - mean) · gamma / sqrt(var + eps) + beta.
   */
  private batchNormFoldedFuse(fanIn: number): { weight: Float64Array; bias: Float64Array } {
    const d = this.arch.decoderHiddenSize;
    const fuseWeight = this.w.get(`${K.linearFuse}.weight`, [d, fanIn, 1, 1]);
    const gamma = this.w.get(`${K.batchNorm}.weight`, [d]);
    const beta = this.w.get(`${K.batchNorm}.bias`, [d]);
    const mean = this.w.get(`${K.batchNorm}.running_mean`, [d]);
    const variance = this.w.get(`${K.batchNorm}.running_var`, [d]);
    const weight = new Float64Array(d * fanIn);
    const bias = new Float64Array(d);
    for (let o = 0; o < d; o++) {
      const scale = gamma[o]! / Math.sqrt(variance[o]! + this.arch.batchNormEps);
      for (let i = 0; i < fanIn; i++) weight[o * fanIn + i] = fuseWeight[o * fanIn + i]! * scale;
      bias[o] = beta[o]! - mean[o]! * scale;
    }
    return { weight, bias };
  }

  /** Stage i's SegformerMLP projection: weight [d, channels] and bias [d]. */
  private stageProjection(i: number, channels: number) {
    const d = this.arch.decoderHiddenSize;
    return {
      weight: this.w.get(`${K.decoderLinear(i)}.weight`, [d, channels]),
      bias: this.w.get(`${K.decoderLinear(i)}.bias`, [d]),
    };
  }

  /** Bilinear (align_corners = False) resize of an NCHW map to the stage-1 size `size`. */
  private resizeTo(map: string, size: string): string {
    const { g } = this;
    const sizes = g.node('Concat', [g.node('Shape', [map], { start: 0, end: 2 }), size], { axis: 0 });
    return g.node('Resize', [map, '', '', sizes], {
      mode: 'linear',
      coordinate_transformation_mode: 'half_pixel',
    });
  }

  /** The module as written: project each stage (a 1×1 conv), upsample, concat [c4, c3, c2, c1], fuse. */
  private faithfulFusion(
    stages: { map: string; channels: number }[],
    fuse: { weight: Float64Array; bias: Float64Array },
  ) {
    const { g } = this;
    const d = this.arch.decoderHiddenSize;
    const stage1Size = g.node('Shape', [stages[0]!.map], { start: 2, end: 4 });
    const upsampled = stages.map(({ map, channels }, i) => {
      const { weight, bias } = this.stageProjection(i, channels);
      const projected = g.node('Conv', [
        map,
        g.weight(`${K.decoderLinear(i)}.weight`, weight, [d, channels, 1, 1]),
        g.weight(`${K.decoderLinear(i)}.bias`, bias, [d]),
      ]);
      // Resizing stage 1 to its own size is the identity, so it is skipped.
      return i === 0 ? projected : this.resizeTo(projected, stage1Size);
    });
    const fanIn = stages.length * d;
    return g.node('Conv', [
      g.node('Concat', upsampled.reverse(), { axis: 1 }),
      g.weight(`${K.linearFuse}.weight.bn_folded`, Float32Array.from(fuse.weight), [d, fanIn, 1, 1]),
      g.weight(`${K.linearFuse}.bias.bn_folded`, Float32Array.from(fuse.bias), [d]),
    ]);
  }

  /**
   * The same function with the fuse conv distributed over the stages: since the projection, the resize (its
   * weights sum to 1) and the fuse conv are all linear, fuse(concat(resize(P_i x_i + b_i))) =
   * Σ_i resize((F_i P_i) x_i) + Σ_i F_i b_i + fuse bias. This drops the (n·d → d) conv at stage-1 resolution,
   * about half the multiply-adds of MiT-B0 at 512×512; results differ from the faithful graph by float rounding.
   */
  private foldedFusion(
    stages: { map: string; channels: number }[],
    fuse: { weight: Float64Array; bias: Float64Array },
  ) {
    const { g } = this;
    const d = this.arch.decoderHiddenSize;
    const n = stages.length;
    const fanIn = n * d;
    const stage1Size = g.node('Shape', [stages[0]!.map], { start: 2, end: 4 });
    const totalBias = Float64Array.from(fuse.bias);
    const terms = stages.map(({ map, channels }, i) => {
      const { weight: proj, bias } = this.stageProjection(i, channels);
      // The concat puts stage i at block n-1-i of the fuse conv's input channels.
      const offset = (n - 1 - i) * d;
      const combined = new Float32Array(d * channels);
      for (let o = 0; o < d; o++) {
        const row = o * fanIn + offset;
        for (let c = 0; c < channels; c++) {
          let acc = 0;
          for (let k = 0; k < d; k++) acc += fuse.weight[row + k]! * proj[k * channels + c]!;
          combined[o * channels + c] = acc;
        }
        let acc = 0;
        for (let k = 0; k < d; k++) acc += fuse.weight[row + k]! * bias[k]!;
        totalBias[o]! += acc;
      }
      const projected = g.node('Conv', [
        map,
        g.weight(`${K.decoderLinear(i)}.weight.fuse_folded`, combined, [d, channels, 1, 1]),
      ]);
      return i === 0 ? projected : this.resizeTo(projected, stage1Size);
    });
    const sum = g.node('Sum', terms);
    return g.node('Add', [
      sum,
      g.weight(`${K.decoderPrefix}fuse_bias.folded`, Float32Array.from(totalBias), [1, d, 1, 1]),
    ]);
  }

  /** nn.Linear on [B, N, in]: MatMul with the transposed weight, then Add bias; `scale` multiplies both. */
  private linear(key: string, x: string, inFeatures: number, outFeatures: number, scale = 1): string {
    const { g } = this;
    const weight = this.w.get(`${key}.weight`, [outFeatures, inFeatures]);
    const bias = this.w.get(`${key}.bias`, [outFeatures]);
    const transposed = new Float32Array(weight.length);
    for (let o = 0; o < outFeatures; o++) {
      for (let i = 0; i < inFeatures; i++)
        transposed[i * outFeatures + o] = weight[o * inFeatures + i]! * scale;
    }
    if (scale !== 1) for (let o = 0; o < outFeatures; o++) bias[o]! *= scale;
    const product = g.node('MatMul', [x, g.weight(`${key}.weight.T`, transposed, [inFeatures, outFeatures])]);
    return g.node('Add', [product, g.weight(`${key}.bias`, bias, [outFeatures])]);
  }

  private conv(
    key: string,
    x: string,
    inChannels: number,
    outChannels: number,
    kernel: number,
    stride: number,
    pad: number,
    group = 1,
  ): string {
    const { g } = this;
    const shape = [outChannels, inChannels / group, kernel, kernel];
    const weight = g.weight(`${key}.weight`, this.w.get(`${key}.weight`, shape), shape);
    const bias = g.weight(`${key}.bias`, this.w.get(`${key}.bias`, [outChannels]), [outChannels]);
    return g.node('Conv', [x, weight, bias], {
      kernel_shape: [kernel, kernel],
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
      group,
    });
  }

  private layerNorm(key: string, x: string, channels: number): string {
    const { g } = this;
    const scale = g.weight(`${key}.weight`, this.w.get(`${key}.weight`, [channels]), [channels]);
    const bias = g.weight(`${key}.bias`, this.w.get(`${key}.bias`, [channels]), [channels]);
    return g.node('LayerNormalization', [x, scale, bias], {
      axis: -1,
      epsilon: float(this.arch.layerNormEps),
    });
  }

  /** Exact GELU: the Gelu op from opset 20, else x · 0.5 · (1 + erf(x / √2)) (which ORT fuses into one kernel). */
  private gelu(x: string): string {
    const { g } = this;
    if (this.opset >= 20) return g.node('Gelu', [x], { approximate: 'none' });
    const erf = g.node('Erf', [g.node('Div', [x, this.scalar('sqrt2', Math.SQRT2)])]);
    const onePlus = g.node('Add', [erf, this.scalar('one', 1)]);
    return g.node('Mul', [g.node('Mul', [x, onePlus]), this.scalar('half', 0.5)]);
  }

  private readonly scalars = new Map<string, string>();
  private scalar(hint: string, value: number): string {
    let name = this.scalars.get(hint);
    if (!name) {
      name = this.g.floatConstant(`const_${hint}`, value);
      this.scalars.set(hint, name);
    }
    return name;
  }

  /** [B, C, H, W] → [B, H·W, C]. */
  private mapToTokens(map: string, channels: number): string {
    const { g } = this;
    const flat = g.node('Reshape', [map, g.int64s([0, channels, -1])]);
    return g.node('Transpose', [flat], { perm: [0, 2, 1] });
  }

  /** [B, H·W, C] → [B, C, H, W] with H, W from the `hw` shape tensor. */
  private tokensToMap(tokens: string, channels: number, hw: string): string {
    const { g } = this;
    const shape = g.node('Concat', [g.int64s([0, channels]), hw], { axis: 0 });
    return g.node('Reshape', [g.node('Transpose', [tokens], { perm: [0, 2, 1] }), shape]);
  }
}

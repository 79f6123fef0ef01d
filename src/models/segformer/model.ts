/**
 * SegFormer (MiT encoder + all-MLP decode head) on TF.js, computing what Hugging Face's
 * `SegformerForSemanticSegmentation` computes, in NHWC layout.
 *
 * Tokens are kept as [batch * height * width, channels] matrices, which is NHWC memory order, so moving between
 * the token view (linear layers, attention) and the image view (convolutions) is a free reshape.
 */

import { tf } from '../../engine/tf.ts';
import type { SegformerConfig } from './config.ts';
import { BATCH_NORM_EPS, BATCH_NORM_MOMENTUM, LAYER_NORM_EPS, normalizeConfig } from './config.ts';
import { type BlockKeys, segformerKeys as K } from './keys.ts';
import { dropout, gelu, layerNorm, linear, resizeBilinear } from './ops.ts';
import type { ParamSpec } from './params.ts';
import { segformerParamSpecs, tfShape } from './params.ts';
import { SeededRandom } from './random.ts';

export interface SegformerForwardOptions {
  /** Train mode: dropout, drop path, BatchNorm batch statistics and running-stat updates. */
  training?: boolean;
  /** Return the four stage outputs (NHWC). */
  outputHiddenStates?: boolean;
  /** Seed for this call's dropout / drop-path masks (default: drawn from the model's seeded stream). */
  seed?: number;
  /**
   * The decode head's linear layers (and in eval mode its BatchNorm) are folded into one product per stage
   * (same function, rounding aside, about half the forward work); set this to compute it layer by layer as
   * PyTorch does.
   */
  unfoldedDecoder?: boolean;
}

export interface SegformerOutput {
  /** [N, ceil(H/4), ceil(W/4), numLabels] (exactly PyTorch's stride-4 size). */
  logits: tf.Tensor4D;
  hiddenStates?: tf.Tensor4D[];
}

/** Fresh-weight scheme: Hugging Face's `_init_weights` (default) or the original NVlabs MiT one. */
export type SegformerInit = 'hf' | 'nvlabs';

export interface SegformerOptions {
  seed?: number;
  init?: SegformerInit;
  /** Values (TF.js layout) to use instead of fresh initialisation; used by the checkpoint loader. */
  initialValues?: Map<string, tf.Tensor>;
}

/** Per-forward state: the random stream for masks and whether we train. */
interface Pass {
  training: boolean;
  unfoldedDecoder: boolean;
  rng: SeededRandom;
}

export class Segformer {
  readonly config: SegformerConfig;
  readonly seed: number;
  private readonly specs: ParamSpec[];
  private readonly vars = new Map<string, tf.Variable>();
  private readonly rng: SeededRandom;
  /** Drop-path probability of every block, stage by stage (linspace 0…drop_path_rate over all blocks). */
  private readonly dropPath: number[][];

  constructor(config: SegformerConfig, opts: SegformerOptions = {}) {
    this.config = normalizeConfig(config, 'Segformer config');
    this.seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
    this.rng = new SeededRandom(this.seed);
    this.specs = segformerParamSpecs(this.config);
    const initRng = new SeededRandom(this.seed);
    for (const spec of this.specs) {
      const shape = tfShape(spec);
      const given = opts.initialValues?.get(spec.key);
      let value: tf.Tensor;
      if (given) {
        if (!tf.util.arraysEqual(given.shape, shape)) {
          throw new Error(`${spec.key}: initial value has shape [${given.shape}] but [${shape}] is needed`);
        }
        value = given;
      } else {
        value = freshValue(spec, shape, initRng, this.config.initializer_range, opts.init ?? 'hf');
      }
      this.vars.set(spec.key, tf.variable(value, spec.trainable, undefined, value.dtype));
      if (!given) value.dispose();
    }
    const total = this.config.depths.reduce((a, b) => a + b, 0);
    const rates = Array.from({ length: total }, (_, i) =>
      total > 1 ? (this.config.drop_path_rate * i) / (total - 1) : 0,
    );
    let cur = 0;
    this.dropPath = this.config.depths.map((d) => {
      const r = rates.slice(cur, cur + d);
      cur += d;
      return r;
    });
  }

  /** The parameter table (HF keys, file shapes, layouts). */
  paramSpecs(): readonly ParamSpec[] {
    return this.specs;
  }

  /** HF key -> variable, for every tensor of the checkpoint (BatchNorm running stats included). */
  namedWeights(): Map<string, tf.Variable> {
    return new Map(this.vars);
  }

  encoderVariables(): tf.Variable[] {
    return this.specs.filter((s) => s.trainable && s.part === 'encoder').map((s) => this.w(s.key));
  }

  decoderVariables(): tf.Variable[] {
    return this.specs.filter((s) => s.trainable && s.part === 'decoder').map((s) => this.w(s.key));
  }

  trainableVariables(): tf.Variable[] {
    return this.specs.filter((s) => s.trainable).map((s) => this.w(s.key));
  }

  /** Trainable parameter count, equal to `sum(p.numel() for p in model.parameters())` in PyTorch. */
  numParameters(): number {
    return this.specs.filter((s) => s.trainable).reduce((a, s) => a + this.w(s.key).size, 0);
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }

  forward(pixelValues: tf.Tensor4D, opts: SegformerForwardOptions = {}): SegformerOutput {
    if (this.vars.size === 0) throw new Error('Segformer: forward on a disposed model');
    this.checkInput(pixelValues);
    const pass: Pass = {
      training: opts.training === true,
      unfoldedDecoder: opts.unfoldedDecoder === true,
      rng: opts.seed != null ? new SeededRandom(opts.seed) : new SeededRandom(this.rng.nextSeed()),
    };
    const result = tf.tidy(() => {
      const stages = this.encode(pixelValues, pass);
      const logits = this.decode(stages, pass);
      return opts.outputHiddenStates ? [logits, ...stages] : [logits];
    });
    const [logits, ...hidden] = result;
    return opts.outputHiddenStates ? { logits, hiddenStates: hidden } : { logits };
  }

  /** Rejects inputs PyTorch would reject too (wrong layout, or too small for a stride / reduction conv). */
  private checkInput(x: tf.Tensor4D): void {
    const c = this.config;
    const [n, height, width, channels] = x.shape;
    if (x.rank !== 4 || channels !== c.num_channels) {
      throw new Error(
        `Segformer: pixel values must be NHWC with ${c.num_channels} channels (got [${x.shape}])`,
      );
    }
    if (x.dtype !== 'float32') throw new Error(`Segformer: pixel values must be float32 (got ${x.dtype})`);
    if (n < 1) throw new Error('Segformer: empty batch');
    let h = height;
    let w = width;
    for (let i = 0; i < c.num_encoder_blocks; i++) {
      const k = c.patch_sizes[i];
      const pad = Math.floor(k / 2);
      h = Math.floor((h + 2 * pad - k) / c.strides[i]) + 1;
      w = Math.floor((w + 2 * pad - k) / c.strides[i]) + 1;
      const need = Math.max(1, c.sr_ratios[i]);
      if (h < need || w < need) {
        throw new Error(
          `Segformer: a ${height}×${width} input is too small: stage ${i + 1} would be ${h}×${w}, ` +
            `below its ${need}×${need} sequence-reduction window`,
        );
      }
    }
  }

  private w<R extends tf.Rank = tf.Rank>(key: string): tf.Variable<R> {
    const v = this.vars.get(key);
    if (!v) throw new Error(`Segformer: no parameter ${key}`);
    return v as tf.Variable<R>;
  }

  // ---- encoder -------------------------------------------------------------------------------------------

  private encode(pixelValues: tf.Tensor4D, pass: Pass): tf.Tensor4D[] {
    const c = this.config;
    const outputs: tf.Tensor4D[] = [];
    let x: tf.Tensor4D = pixelValues;
    for (let i = 0; i < c.num_encoder_blocks; i++) {
      const pe = K.patchEmbedding(i);
      const pad = Math.floor(c.patch_sizes[i] / 2);
      // Symmetric padding k//2 as nn.Conv2d(padding=k//2); output floor((H + 2p - k) / s) + 1.
      const padding: [[number, number], [number, number], [number, number], [number, number]] = [
        [0, 0],
        [pad, pad],
        [pad, pad],
        [0, 0],
      ];
      const filter = this.w<tf.Rank.R4>(`${pe.proj}.weight`);
      const bias = this.w<tf.Rank.R1>(`${pe.proj}.bias`);
      // The fused conv's gradient always computes the input gradient too; for the pixels (stage 1) nothing needs
      // it, and the plain conv's gradient is only evaluated for inputs that lead to a variable.
      const emb =
        i === 0 && pass.training
          ? (tf.add(tf.conv2d(x, filter, c.strides[i], padding), bias) as tf.Tensor4D)
          : tf.fused.conv2d({ x, filter, bias, strides: c.strides[i], pad: padding });
      const [n, h, w, ch] = emb.shape;
      let tokens = layerNorm(
        tf.reshape(emb, [n * h * w, ch]) as tf.Tensor2D,
        this.w(`${pe.norm}.weight`),
        this.w(`${pe.norm}.bias`),
        LAYER_NORM_EPS,
      );
      for (let j = 0; j < c.depths[i]; j++) {
        tokens = this.block(tokens, [n, h, w], i, j, pass);
      }
      const ln = K.stageNorm(i);
      tokens = layerNorm(tokens, this.w(`${ln}.weight`), this.w(`${ln}.bias`), LAYER_NORM_EPS);
      x = tf.reshape(tokens, [n, h, w, ch]);
      outputs.push(x);
    }
    return outputs;
  }

  /** One pre-norm transformer block: x + DropPath(Attn(LN(x))), then x + DropPath(MixFFN(LN(x))). */
  private block(
    x: tf.Tensor2D,
    [n, h, w]: [number, number, number],
    stage: number,
    index: number,
    pass: Pass,
  ): tf.Tensor2D {
    const b = K.block(stage, index);
    const c = this.config;
    const pDrop = pass.training ? this.dropPath[stage][index] : 0;
    const hiddenDrop = pass.training ? c.hidden_dropout_prob : 0;

    const a = layerNorm(x, this.w(`${b.norm1}.weight`), this.w(`${b.norm1}.bias`), LAYER_NORM_EPS);
    let attn = this.attention(a, [n, h, w], stage, b, pass);
    attn = linear(attn, this.w(`${b.attentionOutput}.weight`), this.w(`${b.attentionOutput}.bias`));
    attn = dropout(attn, hiddenDrop, pass.rng.nextSeed());
    x = tf.add(x, this.dropPath2d(attn, n, pDrop, pass));

    const m0 = layerNorm(x, this.w(`${b.norm2}.weight`), this.w(`${b.norm2}.bias`), LAYER_NORM_EPS);
    const m1 = linear(m0, this.w(`${b.dense1}.weight`), this.w(`${b.dense1}.bias`));
    const hidden = m1.shape[1];
    const conv = tf.fused.depthwiseConv2d({
      x: tf.reshape(m1, [n, h, w, hidden]) as tf.Tensor4D,
      filter: this.w<tf.Rank.R4>(`${b.dwconv}.weight`),
      bias: this.w<tf.Rank.R1>(`${b.dwconv}.bias`),
      strides: 1,
      pad: 'same', // 3×3, stride 1: symmetric padding 1, as the PyTorch conv
    });
    let m = gelu(tf.reshape(conv, [n * h * w, hidden]) as tf.Tensor2D);
    m = dropout(m, hiddenDrop, pass.rng.nextSeed());
    m = linear(m, this.w(`${b.dense2}.weight`), this.w(`${b.dense2}.bias`));
    m = dropout(m, hiddenDrop, pass.rng.nextSeed());
    return tf.add(x, this.dropPath2d(m, n, pDrop, pass));
  }

  /** Stochastic depth on a token matrix: one keep/drop decision per sample. */
  private dropPath2d(x: tf.Tensor2D, n: number, p: number, pass: Pass): tf.Tensor2D {
    if (p <= 0) return x;
    const [rows, ch] = x.shape;
    const perSample = tf.reshape(x, [n, rows / n, ch]);
    return tf.reshape(dropout(perSample, p, pass.rng.nextSeed(), [n, 1, 1]), [rows, ch]);
  }

  /** Efficient self-attention: keys and values come from a sequence reduced by an sr×sr strided conv. */
  private attention(
    x: tf.Tensor2D,
    [n, h, w]: [number, number, number],
    stage: number,
    b: BlockKeys,
    pass: Pass,
  ): tf.Tensor2D {
    const c = this.config;
    const ch = x.shape[1];
    const heads = c.num_attention_heads[stage];
    const d = ch / heads;
    const sr = c.sr_ratios[stage];
    const q = linear(x, this.w(`${b.query}.weight`), this.w(`${b.query}.bias`));
    let kv: tf.Tensor2D = x;
    if (sr > 1) {
      const reduced = tf.fused.conv2d({
        x: tf.reshape(x, [n, h, w, ch]) as tf.Tensor4D,
        filter: this.w<tf.Rank.R4>(`${b.sr}.weight`),
        bias: this.w<tf.Rank.R1>(`${b.sr}.bias`),
        strides: sr,
        pad: 'valid',
      });
      const [, rh, rw] = reduced.shape;
      kv = layerNorm(
        tf.reshape(reduced, [n * rh * rw, ch]) as tf.Tensor2D,
        this.w(`${b.srNorm}.weight`),
        this.w(`${b.srNorm}.bias`),
        LAYER_NORM_EPS,
      );
    }
    const k = linear(kv, this.w(`${b.key}.weight`), this.w(`${b.key}.bias`));
    const v = linear(kv, this.w(`${b.value}.weight`), this.w(`${b.value}.bias`));
    const lq = h * w;
    const lk = kv.shape[0] / n;
    // [rows, heads*d] -> [n, heads, L, d]; with one head this is a free reshape.
    const split = (t: tf.Tensor2D, len: number): tf.Tensor4D =>
      heads === 1
        ? (tf.reshape(t, [n, 1, len, d]) as tf.Tensor4D)
        : tf.transpose(tf.reshape(t, [n, len, heads, d]), [0, 2, 1, 3]);
    const qh = split(tf.mul(q, 1 / Math.sqrt(d)) as tf.Tensor2D, lq);
    const scores = tf.matMul(qh, split(k, lk), false, true); // [n, heads, lq, lk]
    let probs = tf.softmax(scores);
    if (pass.training) probs = dropout(probs, c.attention_probs_dropout_prob, pass.rng.nextSeed());
    const ctx = tf.matMul(probs, split(v, lk)); // [n, heads, lq, d]
    const merged = heads === 1 ? ctx : tf.transpose(ctx, [0, 2, 1, 3]);
    return tf.reshape(merged, [n * lq, ch]);
  }

  // ---- decode head ---------------------------------------------------------------------------------------

  private decode(stages: tf.Tensor4D[], pass: Pass): tf.Tensor4D {
    const c = this.config;
    const dim = c.decoder_hidden_size;
    const [n, h1, w1] = stages[0].shape;
    let y = pass.unfoldedDecoder ? this.fuseLayerByLayer(stages, pass) : this.fuseFolded(stages, pass);
    y = tf.relu(y);
    if (pass.training) y = dropout(y, c.classifier_dropout_prob, pass.rng.nextSeed());
    const clsW = this.w<tf.Rank.R4>(`${K.classifier}.weight`);
    const labels = clsW.shape[3];
    const logits = linear(y, tf.reshape(clsW, [dim, labels]), this.w(`${K.classifier}.bias`));
    return tf.reshape(logits, [n, h1, w1, labels]);
  }

  /**
   * BatchNorm(linear_fuse(concat[up(linear_c(stage))])) as PyTorch computes it: per-stage projection, upsampling
   * to the stage-1 size, concatenation as [c4, c3, c2, c1], 1×1 conv, BatchNorm. Returns [N*H1*W1, D].
   */
  private fuseLayerByLayer(stages: tf.Tensor4D[], pass: Pass): tf.Tensor2D {
    const dim = this.config.decoder_hidden_size;
    const [n, h1, w1] = stages[0].shape;
    const upsampled: tf.Tensor4D[] = stages.map((st, i) => {
      const [, h, w, ch] = st.shape;
      const proj = linear(
        tf.reshape(st, [n * h * w, ch]) as tf.Tensor2D,
        this.w(`${K.decoderLinear(i)}.weight`),
        this.w(`${K.decoderLinear(i)}.bias`),
      );
      return resizeBilinear(tf.reshape(proj, [n, h, w, dim]) as tf.Tensor4D, [h1, w1]);
    });
    const fusedIn = tf.concat(upsampled.reverse(), 3); // [c4, c3, c2, c1]
    const fuseW = tf.reshape(this.w(`${K.linearFuse}.weight`), [dim * stages.length, dim]) as tf.Tensor2D;
    const y: tf.Tensor2D = tf.matMul(
      tf.reshape(fusedIn, [n * h1 * w1, dim * stages.length]) as tf.Tensor2D,
      fuseW,
    );
    return this.batchNorm(y, pass);
  }

  /**
   * The same function with the linear parts folded: linear_c and linear_fuse are linear, and bilinear upsampling
   * commutes with per-pixel linear maps (its weights sum to 1, so biases pass through), hence
   * fuse(concat[up(c_i A_i + a_i)]) = Σ_i up(c_i M_i + m_i) with M_i = A_i F_i and m_i = a_i F_i, F_i being the
   * rows of the fuse weight that see stage i. In eval mode the BatchNorm affine map is folded in as well. This
   * skips the [N*H1*W1, 4D] × [4D, D] product and the concatenation (half of the B0 forward pass, and most of
   * the decode head's backward pass) while computing the same function, rounding aside.
   */
  private fuseFolded(stages: tf.Tensor4D[], pass: Pass): tf.Tensor2D {
    const dim = this.config.decoder_hidden_size;
    const count = stages.length;
    const [n, h1, w1] = stages[0].shape;
    const bn = K.batchNorm;
    // Eval: BN(y) = y * scale + shift with the running statistics.
    const scale = pass.training
      ? undefined
      : tf.mul(tf.rsqrt(tf.add(this.w(`${bn}.running_var`), BATCH_NORM_EPS)), this.w(`${bn}.weight`));
    const fuseW = tf.reshape(this.w(`${K.linearFuse}.weight`), [dim * count, dim]) as tf.Tensor2D;
    let sum: tf.Tensor4D | undefined;
    stages.forEach((st, i) => {
      const [, h, w, ch] = st.shape;
      // Rows of the fuse weight that multiply stage i's channels (the concatenation order is reversed).
      const rows = tf.slice(fuseW, [(count - 1 - i) * dim, 0], [dim, dim]);
      const block = scale ? (tf.mul(rows, scale) as tf.Tensor2D) : rows;
      const m = tf.matMul(this.w<tf.Rank.R2>(`${K.decoderLinear(i)}.weight`), block);
      const bias = tf.matMul(tf.reshape(this.w(`${K.decoderLinear(i)}.bias`), [1, dim]), block);
      const z = linear(tf.reshape(st, [n * h * w, ch]) as tf.Tensor2D, m, tf.reshape(bias, [dim]));
      const up = resizeBilinear(tf.reshape(z, [n, h, w, dim]) as tf.Tensor4D, [h1, w1]);
      sum = sum ? tf.add(sum, up) : up;
    });
    const y = tf.reshape(sum!, [n * h1 * w1, dim]) as tf.Tensor2D;
    if (!scale) return this.batchNorm(y, pass);
    const shift = tf.sub(this.w(`${bn}.bias`), tf.mul(this.w(`${bn}.running_mean`), scale));
    return tf.add(y, shift) as tf.Tensor2D;
  }

  /** BatchNorm2d over the rows of [N*H*W, C]; in training, batch statistics and a running-stat update. */
  private batchNorm(y: tf.Tensor2D, pass: Pass): tf.Tensor2D {
    const bn = K.batchNorm;
    const gamma = this.w<tf.Rank.R1>(`${bn}.weight`);
    const beta = this.w<tf.Rank.R1>(`${bn}.bias`);
    const runningMean = this.w<tf.Rank.R1>(`${bn}.running_mean`);
    const runningVar = this.w<tf.Rank.R1>(`${bn}.running_var`);
    if (!pass.training) {
      return tf.add<tf.Tensor2D>(
        tf.mul(tf.sub(y, runningMean), tf.mul(tf.rsqrt(tf.add(runningVar, BATCH_NORM_EPS)), gamma)),
        beta,
      );
    }
    const count = y.shape[0];
    if (count < 2) throw new Error('Segformer: BatchNorm in training needs more than one value per channel');
    const { out, mean, variance } = batchNormTraining(y, gamma, beta, BATCH_NORM_EPS);
    // Running statistics use the unbiased variance; they carry no gradient.
    const m = BATCH_NORM_MOMENTUM;
    runningMean.assign(tf.add(tf.mul(runningMean, 1 - m), tf.mul(mean, m)));
    runningVar.assign(tf.add(tf.mul(runningVar, 1 - m), tf.mul(variance, (m * count) / (count - 1))));
    const tracked = this.w(`${bn}.num_batches_tracked`);
    tracked.assign(tf.add(tracked, tf.scalar(1, 'int32')));
    return out;
  }
}

/**
 * Column sums of [rows, C]. On wasm, slideseg's Sum kernel streams leading-axis sums in one pass; elsewhere TF.js
 * transposes first, so there they are a [1, rows] × [rows, C] product.
 */
function columnSums(x: tf.Tensor2D): tf.Tensor1D {
  if (tf.getBackend() === 'wasm') return tf.sum(x, 0);
  return tf.reshape(tf.matMul(tf.ones([1, x.shape[0]]), x), [-1]);
}

/**
 * Training-mode BatchNorm over the rows of [rows, C] with the batch statistics (biased variance), with its
 * closed-form backward pass, which replaces the broadcast-and-reduce gradients TF.js would chain together:
 * dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy · x̂)), dγ = Σ dy · x̂, dβ = Σ dy.
 */
function batchNormTraining(
  y: tf.Tensor2D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  eps: number,
): { out: tf.Tensor2D; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const count = y.shape[0];
  const mean = tf.div(columnSums(y), count) as tf.Tensor1D;
  const variance = tf.div(columnSums(tf.square(tf.sub(y, mean))), count) as tf.Tensor1D;
  const normalise = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, g, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const invStd = tf.rsqrt(tf.add(variance, eps));
    const xHat = tf.mul(tf.sub(x, mean), invStd);
    save([xHat, invStd, g]);
    return {
      value: tf.add(tf.mul(xHat, g), b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, inv, gm] = saved;
        const sumDy = columnSums(dy as tf.Tensor2D);
        const sumDyXhat = columnSums(tf.mul(dy, xh) as tf.Tensor2D);
        const dx = tf.mul(
          tf.sub(tf.sub(dy, tf.div(sumDy, count)), tf.mul(xh, tf.div(sumDyXhat, count))),
          tf.mul(gm, inv),
        );
        return [dx, sumDyXhat, sumDy];
      },
    };
  });
  return { out: normalise(y, gamma, beta) as tf.Tensor2D, mean, variance };
}

/**
 * A fresh tensor. 'hf' is Hugging Face's `_init_weights`: N(0, initializer_range) for every Linear and Conv2d
 * weight, zero biases, LayerNorm/BatchNorm weight 1 and bias 0. 'nvlabs' is the original MiT initialisation for
 * the encoder: truncated normal (std initializer_range, cut at ±2) for Linear weights and N(0, √(2 / fan_out))
 * with fan_out = k·k·out_channels / groups for convolutions; the decode head stays as in 'hf'.
 */
function freshValue(
  spec: ParamSpec,
  shape: number[],
  rng: SeededRandom,
  std: number,
  scheme: SegformerInit,
): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  if (spec.layout === 'count') return tf.scalar(0, 'int32');
  switch (spec.init) {
    case 'normal': {
      if (scheme === 'nvlabs' && spec.part === 'encoder') {
        if (spec.layout === 'linear') return tf.tensor(rng.truncatedNormal(size, std, -2, 2), shape);
        const [out, , kh, kw] = spec.fileShape;
        const groups = spec.layout === 'depthwise' ? out : 1;
        return tf.tensor(rng.normal(size, 0, Math.sqrt(2 / ((kh * kw * out) / groups))), shape);
      }
      return tf.tensor(rng.normal(size, 0, std), shape);
    }
    case 'ones':
      return tf.ones(shape);
    default:
      return tf.zeros(shape);
  }
}

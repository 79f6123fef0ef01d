/**
 * A linear probe (or a one-hidden-layer MLP) trained on frozen embeddings: AdamW, softmax cross-entropy,
 * seeded initialisation and mini-batch order, early stopping on the validation loss (the best epoch's
 * weights are kept), scored with scikit-learn-equivalent classification metrics.
 */
import { tf } from '../engine/index.ts';
import { type ClassificationMetrics, classificationMetrics } from '../metrics/index.ts';
import { AdamW } from '../optim/adamw.ts';
import { runTrainingLoop } from '../optim/loop.ts';
import { createRng, type Rng } from '../patching/random.ts';
import type { SplitEmbeddings } from './embeddings.ts';

export interface ProbeOptions {
  head?: 'linear' | 'mlp';
  /** Hidden width of the MLP head (default 256). */
  hidden?: number;
  lr?: number;
  weightDecay?: number;
  batchSize?: number;
  maxEpochs?: number;
  /** Epochs without a lower validation loss before stopping (default 10). */
  patience?: number;
  seed: number;
}

export interface ProbeRun {
  seed: number;
  epochs: number;
  bestEpoch: number;
  bestValLoss: number | null;
  val: ClassificationMetrics | null;
  test: ClassificationMetrics | null;
}

/** PyTorch's nn.Linear initialisation: weights and bias uniform in ±1/sqrt(fan_in). */
function linearInit(rng: Rng, fanIn: number, fanOut: number): { w: tf.Variable; b: tf.Variable } {
  const bound = 1 / Math.sqrt(fanIn);
  const w = Float32Array.from({ length: fanIn * fanOut }, () => rng.uniform(-bound, bound));
  const b = Float32Array.from({ length: fanOut }, () => rng.uniform(-bound, bound));
  return { w: tf.variable(tf.tensor2d(w, [fanIn, fanOut])), b: tf.variable(tf.tensor1d(b)) };
}

function crossEntropy(logits: tf.Tensor2D, y: tf.Tensor1D, C: number): tf.Scalar {
  return tf.tidy(() => tf.oneHot(y, C).mul(tf.logSoftmax(logits)).sum(1).mean().neg() as tf.Scalar);
}

export async function trainProbe(
  data: { train: SplitEmbeddings; val?: SplitEmbeddings; test?: SplitEmbeddings },
  numClasses: number,
  o: ProbeOptions,
): Promise<ProbeRun> {
  const { train } = data;
  if (train.n === 0) throw new Error('eval-encoder: the training split is empty');
  const D = train.dim;
  const C = numClasses;
  const rng = createRng(o.seed);
  const params = new Map<string, tf.Variable>();
  if (o.head === 'mlp') {
    const H = o.hidden ?? 256;
    const l1 = linearInit(rng, D, H);
    const l2 = linearInit(rng, H, C);
    params.set('fc1.weight', l1.w).set('fc1.bias', l1.b).set('fc2.weight', l2.w).set('fc2.bias', l2.b);
  } else {
    const l = linearInit(rng, D, C);
    params.set('fc.weight', l.w).set('fc.bias', l.b);
  }
  const forward = (x: tf.Tensor2D): tf.Tensor2D =>
    tf.tidy(() => {
      if (o.head === 'mlp') {
        const h = tf.relu(x.matMul(params.get('fc1.weight')!).add(params.get('fc1.bias')!));
        return h.matMul(params.get('fc2.weight')!).add(params.get('fc2.bias')!) as tf.Tensor2D;
      }
      return x.matMul(params.get('fc.weight')!).add(params.get('fc.bias')!) as tf.Tensor2D;
    });
  const opt = new AdamW([{ params }], { lr: o.lr ?? 1e-3, weightDecay: o.weightDecay ?? 1e-4 });
  const tensors = (s: SplitEmbeddings) => ({
    x: tf.tensor2d(s.x, [s.n, s.dim]),
    y: tf.tensor1d(s.y, 'int32'),
  });
  const tr = tensors(train);
  const va = data.val && data.val.n > 0 ? tensors(data.val) : null;
  const batch = Math.min(o.batchSize ?? 256, train.n);
  const maxEpochs = o.maxEpochs ?? 100;
  const patience = o.patience ?? 10;
  type Best = { loss: number; epoch: number; weights: Map<string, tf.Tensor> };
  // Assigned in the loop's hook: typed so the checks after the loop do not see it as always null.
  let best = null as Best | null;
  let epoch = 0;
  const order = Int32Array.from({ length: train.n }, (_, i) => i);
  const stepsPerEpoch = Math.ceil(train.n / batch);
  const lr = o.lr ?? 1e-3;
  try {
    // Epochs of shuffled mini-batches at a constant rate, in memory; the validation loss decides when to stop
    // (the training loss is not reported, so no step waits to read it).
    await runTrainingLoop({
      label: 'probe',
      opt,
      schedule: { kind: 'constant', baseLr: lr, totalSteps: maxEpochs * stepsPerEpoch },
      steps: maxEpochs * stepsPerEpoch,
      clipGradNorm: null,
      logEvery: maxEpochs * stepsPerEpoch,
      quiet: true,
      log: () => {},
      microBatch: async (step, _k, acc) => {
        const s = (step % stepsPerEpoch) * batch;
        if (s === 0) {
          for (let i = order.length - 1; i > 0; i--) {
            const j = rng.int(i + 1);
            [order[i], order[j]] = [order[j]!, order[i]!];
          }
        }
        const idx = tf.tensor1d(order.slice(s, Math.min(s + batch, train.n)), 'int32');
        const xb = tr.x.gather(idx) as tf.Tensor2D;
        const yb = tr.y.gather(idx) as tf.Tensor1D;
        const { value, grads } = tf.variableGrads(
          () => crossEntropy(forward(xb), yb, C),
          [...params.values()],
        );
        tf.dispose([idx, xb, yb, value]);
        acc.addGradients([...params].map(([name, v]) => [name, grads[v.name]!]));
      },
      afterStep: async (done) => {
        if (done % stepsPerEpoch !== 0) return;
        epoch = done / stepsPerEpoch;
        if (!va) return;
        const loss = tf.tidy(() => crossEntropy(forward(va.x), va.y, C).dataSync()[0]!);
        if (best == null || loss < best.loss) {
          for (const t of best?.weights.values() ?? []) t.dispose();
          best = { loss, epoch, weights: new Map([...params].map(([k, v]) => [k, v.clone()])) };
        } else if (epoch - best.epoch >= patience) return 'stop';
      },
    });
    if (best) for (const [k, v] of params) v.assign(best.weights.get(k)!);
    const score = (s?: SplitEmbeddings): ClassificationMetrics | null => {
      if (!s || s.n === 0) return null;
      const probs = tf.tidy(() => tf.softmax(forward(tf.tensor2d(s.x, [s.n, s.dim]))));
      const m = classificationMetrics(s.y, probs);
      probs.dispose();
      return m;
    };
    return {
      seed: o.seed,
      epochs: epoch,
      bestEpoch: best?.epoch ?? epoch,
      bestValLoss: best?.loss ?? null,
      val: score(data.val),
      test: score(data.test),
    };
  } finally {
    for (const t of best?.weights.values() ?? []) t.dispose();
    tf.dispose([tr.x, tr.y, ...(va ? [va.x, va.y] : []), ...params.values()]);
    opt.dispose();
  }
}

/**
 * The contrastive projection head: Linear(D → hidden), ReLU, Linear(hidden → dim) on globally average-pooled
 * last-stage features, as SupContrast's `head = nn.Sequential(Linear, ReLU, Linear)`. Saved as safetensors with
 * PyTorch names and layouts (`head.0.weight` [out, in], ...) so a PyTorch script can read it too.
 */
import { tf } from '../engine/index.ts';
import { fromFloat32, type SafeTensor, toFloat32 } from '../io/safetensors.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors-file.ts';
import { createRng } from '../patching/random.ts';

export const HEAD_FILE = 'projection_head.safetensors';

export class ProjectionHead {
  /** PyTorch key → variable; linear weights are stored [in, out] here (x @ W). */
  readonly vars = new Map<string, tf.Variable>();

  constructor(
    readonly inDim: number,
    readonly hidden: number,
    readonly outDim: number,
    seed: number,
  ) {
    const rng = createRng(seed);
    // nn.Linear's default: weight and bias uniform in ±1/sqrt(fan_in).
    const uniform = (n: number, fanIn: number) => {
      const bound = 1 / Math.sqrt(fanIn);
      return Float32Array.from({ length: n }, () => rng.uniform(-bound, bound));
    };
    const add = (key: string, shape: number[], fanIn: number) => {
      const n = shape.reduce((a, b) => a * b, 1);
      this.vars.set(key, tf.variable(tf.tensor(uniform(n, fanIn), shape), true, `pretrain/${key}`));
    };
    add('head.0.weight', [inDim, hidden], inDim);
    add('head.0.bias', [hidden], inDim);
    add('head.2.weight', [hidden, outDim], hidden);
    add('head.2.bias', [outDim], hidden);
  }

  /** [N, D] pooled features → [N, dim] projections (not normalised). */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    const v = (k: string) => this.vars.get(k)!;
    const h = tf.relu(tf.add(tf.matMul(x, v('head.0.weight') as tf.Tensor2D), v('head.0.bias')));
    return tf.add(tf.matMul(h as tf.Tensor2D, v('head.2.weight') as tf.Tensor2D), v('head.2.bias'));
  }

  async save(path: string): Promise<void> {
    const entries = [...this.vars].map(([key, v]): [string, SafeTensor] => {
      const t = v.rank === 2 ? tf.transpose(v) : v;
      const data = Float32Array.from(t.dataSync() as Float32Array);
      const shape = [...t.shape];
      if (t !== v) t.dispose();
      return [key, fromFloat32(data, shape)];
    });
    await writeSafetensors(path, entries, { format: 'pt' });
  }

  async load(path: string): Promise<void> {
    const file = (await readSafetensors(path)).tensors;
    for (const [key, v] of this.vars) {
      const t = file.get(key);
      if (!t) throw new Error(`${path}: projection head lacks '${key}'`);
      const want = v.rank === 2 ? [v.shape[1]!, v.shape[0]!] : [...v.shape];
      if (!tf.util.arraysEqual(t.shape, want))
        throw new Error(`${path}: '${key}' is [${t.shape}], the head needs [${want}]`);
      tf.tidy(() => {
        const value = tf.tensor(toFloat32(t, key), t.shape);
        v.assign(v.rank === 2 ? tf.transpose(value) : value);
      });
    }
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
  }
}

/**
 * AdamW with PyTorch's semantics (torch.optim.AdamW): decoupled weight decay applied as
 * p ← p·(1 − lr·wd) before the Adam update, bias-corrected moments, eps added after the square root.
 * Parameters are keyed by name (the Hugging Face key), so optimiser state saves and resumes by name.
 */
import { tf } from '../engine/index.ts';
import { ADAMW } from '../engine/kernels/adamw.ts';

export interface ParamGroup {
  /** name → variable; names key the optimiser state. */
  params: Map<string, tf.Variable>;
  /** Multiplies the scheduled learning rate (SegFormer trains its decode head at 10×). */
  lrMultiplier?: number;
  /** Overrides the optimiser's weight decay for this group (0 for norms, as mmseg's SegFormer recipe). */
  weightDecay?: number;
}

export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

let fusedUpdate = true;

/** Whether AdamW uses slideseg's one-pass kernel where the backend has it (off: the TF.js composition, for tests). */
export function setFusedAdamW(enabled: boolean): void {
  fusedUpdate = enabled;
}

export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Number of update steps taken (PyTorch keeps it per parameter; all parameters step together here). */
  stepCount = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(
    readonly groups: ParamGroup[],
    opts: AdamWOptions,
  ) {
    this.lr = opts.lr;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    const seen = new Set<string>();
    for (const g of groups) {
      for (const [name, p] of g.params) {
        if (seen.has(name)) throw new Error(`AdamW: parameter '${name}' is in two groups`);
        seen.add(name);
        this.m.set(name, tf.variable(tf.zerosLike(p), false));
        this.v.set(name, tf.variable(tf.zerosLike(p), false));
      }
    }
  }

  /** Applies one update from gradients keyed by parameter name; parameters without a gradient are left alone. */
  step(grads: Map<string, tf.Tensor>): void {
    this.stepCount++;
    const t = this.stepCount;
    const bc1 = 1 - this.beta1 ** t;
    const bc2 = 1 - this.beta2 ** t;
    // slideseg's one-pass kernel (wasm, cpu) computes the composition below in the same float32 operations.
    const fused = fusedUpdate && tf.getKernel(ADAMW, tf.getBackend()) != null;
    for (const g of this.groups) {
      const lr = this.lr * (g.lrMultiplier ?? 1);
      const wd = g.weightDecay ?? this.weightDecay;
      for (const [name, p] of g.params) {
        const grad = grads.get(name);
        if (!grad) continue;
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        if (fused && grad.dtype === 'float32' && tf.util.arraysEqual(grad.shape, p.shape)) {
          const attrs = {
            beta1: this.beta1,
            beta2: this.beta2,
            bc1,
            bc2,
            eps: this.eps,
            lr,
            weightDecay: wd,
          };
          const outs = tf.engine().runKernel(ADAMW, { p, m, v, g: grad }, attrs as never) as tf.Tensor[];
          // assign() shares the new tensor's storage and takes a reference: the temporaries are still disposed.
          p.assign(outs[0]!);
          m.assign(outs[1]!);
          v.assign(outs[2]!);
          tf.dispose(outs);
          continue;
        }
        tf.tidy(() => {
          const mNew = m.mul(this.beta1).add(grad.mul(1 - this.beta1));
          const vNew = v.mul(this.beta2).add(grad.square().mul(1 - this.beta2));
          m.assign(mNew);
          v.assign(vNew);
          const denom = vNew.div(bc2).sqrt().add(this.eps);
          const decayed = wd !== 0 ? p.mul(1 - lr * wd) : p;
          p.assign(decayed.sub(mNew.div(denom).mul(lr / bc1)));
        });
      }
    }
  }

  /** Moments as name → tensor, for checkpoints (`exp_avg.<name>`, `exp_avg_sq.<name>`). */
  stateTensors(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [name, m] of this.m) out.set(`exp_avg.${name}`, m);
    for (const [name, v] of this.v) out.set(`exp_avg_sq.${name}`, v);
    return out;
  }

  loadState(tensors: Map<string, Float32Array>, stepCount: number): void {
    for (const [prefix, store] of [
      ['exp_avg', this.m],
      ['exp_avg_sq', this.v],
    ] as const) {
      for (const [name, variable] of store) {
        const data = tensors.get(`${prefix}.${name}`);
        if (!data) throw new Error(`optimiser state has no '${prefix}.${name}'`);
        if (data.length !== variable.size) {
          throw new Error(
            `optimiser state '${prefix}.${name}' has ${data.length} values, expected ${variable.size}`,
          );
        }
        const t = tf.tensor(data, variable.shape);
        variable.assign(t);
        t.dispose();
      }
    }
    this.stepCount = stepCount;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}

/**
 * Scales gradients so their global L2 norm is at most maxNorm (torch.nn.utils.clip_grad_norm_, eps 1e-6).
 * Returns the clipped gradients and the norm before clipping.
 */
export function clipGradNorm(
  grads: Map<string, tf.Tensor>,
  maxNorm: number,
): { grads: Map<string, tf.Tensor>; norm: number } {
  const norm = tf.tidy(() => tf.addN([...grads.values()].map((g) => g.square().sum())).sqrt()).dataSync()[0]!;
  const coef = maxNorm / (norm + 1e-6);
  if (coef >= 1 || !Number.isFinite(norm)) return { grads, norm };
  const out = new Map<string, tf.Tensor>();
  for (const [k, g] of grads) {
    out.set(k, g.mul(coef));
    g.dispose();
  }
  return { grads: out, norm };
}

/**
 * One optimiser update: clips the gradients to `maxNorm` when set, steps, and disposes the gradients.
 * Returns the global gradient norm before clipping (when clipping is on).
 */
export function applyGradients(
  opt: AdamW,
  grads: Map<string, tf.Tensor>,
  maxNorm: number | null | undefined,
): number | undefined {
  let norm: number | undefined;
  if (maxNorm) {
    const clipped = clipGradNorm(grads, maxNorm);
    grads = clipped.grads;
    norm = clipped.norm;
  }
  opt.step(grads);
  for (const g of grads.values()) g.dispose();
  return norm;
}

/**
 * Losses without golden fixtures (PyTorch CrossEntropyLoss / BCEWithLogitsLoss, the MCC paper variant, SupCon L_in,
 * combineLosses) against plain float64 implementations of their published formulas, values and gradients
 * (gradients of the float64 formulas by central differences).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import {
  bceWithLogitsLoss,
  combineLosses,
  crossEntropyLoss,
  diceLoss,
  focalLoss,
  type LossFn,
  mccLoss,
  softCrossEntropyLoss,
  supConLoss,
} from '../src/losses/index.ts';

/** Deterministic pseudo-random numbers in [0, 1). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const logSoftmaxRow = (x: number[]): number[] => {
  const m = Math.max(...x);
  const lse = m + Math.log(x.reduce((a, v) => a + Math.exp(v - m), 0));
  return x.map((v) => v - lse);
};
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Central-difference gradient of a float64 function. */
function numericGrad(f: (x: number[]) => number, x: number[], h = 1e-5): number[] {
  return x.map((_, i) => {
    const up = x.slice();
    const down = x.slice();
    up[i] += h;
    down[i] -= h;
    return (f(up) - f(down)) / (2 * h);
  });
}

/** Compares a TF.js loss (value and gradient in pred) with a float64 formula of the flat pred values. */
function assertMatches(
  label: string,
  run: (x: tf.Tensor) => tf.Scalar,
  reference: (x: number[]) => number,
  pred: number[],
  shape: number[],
): void {
  const { value, grad } = tf.valueAndGrad(run)(tf.tensor(pred, shape));
  const expected = reference(pred);
  const v = value.dataSync()[0];
  assert.ok(
    Math.abs(v - expected) <= 1e-5 * Math.max(1, Math.abs(expected)),
    `${label}: value ${v} vs ${expected}`,
  );
  const g = grad.dataSync();
  const expectedGrad = numericGrad(reference, pred);
  const scale = Math.max(...expectedGrad.map(Math.abs));
  assert.ok(scale > 0, `${label}: reference gradient is zero`);
  for (let i = 0; i < g.length; i++) {
    assert.ok(
      Math.abs(g[i] - expectedGrad[i]) <= 1e-3 * scale,
      `${label}: gradient[${i}] ${g[i]} vs ${expectedGrad[i]} (max |grad| ${scale})`,
    );
  }
}

// A batch of 2 images of 3x4 pixels, 3 classes, channels-last; class 2 never appears and pixels hold 255 (ignored).
const N = 2;
const P = 12;
const C = 3;
const rand = random(42);
const logits = Array.from({ length: N * P * C }, () => 4 * rand() - 2);
const labels = Array.from({ length: N * P }, (_, i) => (i % 5 === 0 ? 255 : i % 3 === 0 ? 2 : i % 2));
const probs = Array.from({ length: N * P * C }, () => rand());
const binary = Array.from({ length: N * P }, () => (rand() < 0.4 ? 1 : 0));

/** PyTorch cross_entropy with class-index targets (weights, ignore_index, label_smoothing, mean/sum). */
function torchCrossEntropy(
  x: number[],
  y: number[],
  weight: number[],
  ignore: number,
  smoothing: number,
  reduction: 'mean' | 'sum',
): number {
  let nll = 0;
  let smooth = 0;
  let weightSum = 0;
  for (let r = 0; r < y.length; r++) {
    if (y[r] === ignore) continue;
    const lp = logSoftmaxRow(x.slice(r * C, (r + 1) * C));
    nll -= weight[y[r]] * lp[y[r]];
    weightSum += weight[y[r]];
    for (let k = 0; k < C; k++) smooth -= weight[k] * lp[k];
  }
  const scale = reduction === 'mean' ? 1 / weightSum : 1;
  return (1 - smoothing) * nll * scale + (smoothing / C) * smooth * scale;
}

/** PyTorch cross_entropy with class-probability targets. */
function torchSoftTargetCrossEntropy(x: number[], t: number[], weight: number[], smoothing: number): number {
  let total = 0;
  const rows = x.length / C;
  for (let r = 0; r < rows; r++) {
    const lp = logSoftmaxRow(x.slice(r * C, (r + 1) * C));
    for (let k = 0; k < C; k++) total -= weight[k] * ((1 - smoothing) * t[r * C + k] + smoothing / C) * lp[k];
  }
  return total / rows;
}

/** Abhishek & Hamarneh 2021 MCC loss on sigmoid(x). */
function paperMcc(x: number[], t: number[]): number {
  let tp = 0;
  let tn = 0;
  let fp = 0;
  let fn = 0;
  x.forEach((v, i) => {
    const p = sigmoid(v);
    tp += p * t[i];
    tn += (1 - p) * (1 - t[i]);
    fp += p * (1 - t[i]);
    fn += (1 - p) * t[i];
  });
  return 1 - (tp * tn - fp * fn) / (Math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) + 1);
}

/** SupCon L_in / L_out (Khosla et al. 2020, eqs. 2-3) for features [bsz, views, dim], float64. */
function supCon(
  f: number[],
  bsz: number,
  views: number,
  dim: number,
  y: number[],
  variant: 'in' | 'out',
  tau: number,
): number {
  const n = bsz * views;
  // View-major order: row v*bsz + i.
  const z = (a: number) =>
    f.slice(
      ((a % bsz) * views + Math.floor(a / bsz)) * dim,
      ((a % bsz) * views + Math.floor(a / bsz) + 1) * dim,
    );
  const dot = (a: number, b: number) => z(a).reduce((s, v, k) => s + v * z(b)[k], 0) / tau;
  let total = 0;
  for (let a = 0; a < n; a++) {
    let denominator = 0;
    for (let k = 0; k < n; k++) if (k !== a) denominator += Math.exp(dot(a, k));
    const positives = [...Array(n).keys()].filter((k) => k !== a && y[k % bsz] === y[a % bsz]);
    if (variant === 'out') {
      total -= positives.reduce((s, k) => s + dot(a, k) - Math.log(denominator), 0) / positives.length;
    } else {
      total -= Math.log(
        positives.reduce((s, k) => s + Math.exp(dot(a, k)) / denominator, 0) / positives.length,
      );
    }
  }
  return total / n;
}

for (const backend of ['wasm', 'cpu']) {
  describe(`losses against their formulas on ${backend}`, () => {
    before(async () => {
      await ready(backend);
    });
    const target = () => tf.tensor(labels, [N, 3, 4], 'int32');

    test('crossEntropyLoss: weights, ignoreIndex, labelSmoothing, mean and sum (PyTorch semantics)', () => {
      const weight = [0.5, 2, 1.5];
      for (const [w, smoothing, reduction] of [
        [[1, 1, 1], 0, 'mean'],
        [weight, 0, 'mean'],
        [[1, 1, 1], 0.2, 'mean'],
        [weight, 0.1, 'mean'],
        [weight, 0.1, 'sum'],
      ] as Array<[number[], number, 'mean' | 'sum']>) {
        const loss = crossEntropyLoss({ weight: w, ignoreIndex: 255, labelSmoothing: smoothing, reduction });
        assertMatches(
          `weight ${w} smoothing ${smoothing} ${reduction}`,
          (x) => loss(x, target()),
          (x) => torchCrossEntropy(x, labels, w, 255, smoothing, reduction),
          logits,
          [N, 3, 4, C],
        );
      }
    });

    test('crossEntropyLoss with class-probability targets', () => {
      const t = probs.map((v, i) => v / [0, 1, 2].reduce((s, k) => s + probs[Math.floor(i / C) * C + k], 0));
      const loss = crossEntropyLoss({ weight: [1, 3, 0.5], labelSmoothing: 0.1 });
      assertMatches(
        'probability targets',
        (x) => loss(x, tf.tensor(t, [N, 3, 4, C])),
        (x) => torchSoftTargetCrossEntropy(x, t, [1, 3, 0.5], 0.1),
        logits,
        [N, 3, 4, C],
      );
    });

    test('crossEntropyLoss equals softCrossEntropyLoss without smoothing or ignored pixels', () => {
      const clean = tf.tensor(
        labels.map((v) => (v === 255 ? 0 : v)),
        [N, 3, 4],
        'int32',
      );
      const x = tf.tensor(logits, [N, 3, 4, C]);
      const a = crossEntropyLoss()(x, clean).dataSync()[0];
      const b = softCrossEntropyLoss({ smoothFactor: 0 })(x, clean).dataSync()[0];
      assert.ok(Math.abs(a - b) < 1e-6, `${a} vs ${b}`);
    });

    test('bceWithLogitsLoss: weight and posWeight per channel (PyTorch semantics)', () => {
      const t = probs;
      const weight = [1, 0.5, 2];
      const posWeight = [3, 1, 0.25];
      for (const reduction of ['mean', 'sum'] as const) {
        const loss = bceWithLogitsLoss({ weight, posWeight, reduction });
        assertMatches(
          `bce ${reduction}`,
          (x) => loss(x, tf.tensor(t, [N, 3, 4, C])),
          (x) => {
            // PyTorch: (1 - t) x + (1 + (pw - 1) t) (log1p(exp(-|x|)) + max(-x, 0)), times weight.
            const total = x.reduce((s, v, i) => {
              const k = i % C;
              const l =
                (1 - t[i]) * v +
                (1 + (posWeight[k] - 1) * t[i]) * (Math.log1p(Math.exp(-Math.abs(v))) + Math.max(-v, 0));
              return s + weight[k] * l;
            }, 0);
            return reduction === 'mean' ? total / x.length : total;
          },
          logits,
          [N, 3, 4, C],
        );
      }
    });

    test("mccLoss variant 'paper': sigmoid, batch-wide soft counts, +1 in the denominator", () => {
      const x = logits.slice(0, N * P);
      const loss = mccLoss({ variant: 'paper' });
      assertMatches(
        'mcc paper',
        (p) => loss(p, tf.tensor(binary, [N, 3, 4, 1])),
        (p) => paperMcc(p, binary),
        x,
        [N, 3, 4, 1],
      );
      // The smp variant on logits is the smp formula on sigmoid probabilities.
      const smpOnLogits = mccLoss()(
        tf.tensor(x, [N, 3, 4, 1]),
        tf.tensor(binary, [N, 3, 4, 1]),
      ).dataSync()[0];
      const smpOnProbs = mccLoss({ fromLogits: false })(
        tf.tensor(x.map(sigmoid), [N, 3, 4, 1]),
        tf.tensor(binary, [N, 3, 4, 1]),
      ).dataSync()[0];
      assert.ok(Math.abs(smpOnLogits - smpOnProbs) < 1e-6);
      assert.ok(Math.abs(smpOnLogits - paperMcc(x, binary)) > 1e-4, 'the two variants differ');
    });

    test("supConLoss variant 'in' (L_in) and 'out' (L_out) against the paper's formulas", () => {
      const [bsz, views, dim] = [6, 2, 5];
      const r = random(7);
      const raw = Array.from({ length: bsz * views * dim }, () => r() - 0.5);
      // L2-normalise each feature vector.
      const f = raw.map((v, i) => {
        const start = Math.floor(i / dim) * dim;
        return v / Math.hypot(...raw.slice(start, start + dim));
      });
      const y = [0, 1, 0, 2, 1, 0];
      for (const variant of ['in', 'out'] as const) {
        const loss = supConLoss({ temperature: 0.2, baseTemperature: 0.2, variant });
        assertMatches(
          `supcon ${variant}`,
          (x) => loss(x, tf.tensor1d(y, 'int32')),
          (x) => supCon(x, bsz, views, dim, y, variant, 0.2),
          f,
          [bsz, views, dim],
        );
      }
      // With one positive per anchor (SimCLR, two views) L_in and L_out coincide.
      const x = tf.tensor(f, [bsz, views, dim]);
      const lin = supConLoss({ variant: 'in' })(x).dataSync()[0];
      const lout = supConLoss({ variant: 'out' })(x).dataSync()[0];
      assert.ok(Math.abs(lin - lout) < 1e-5 * Math.abs(lout), `${lin} vs ${lout}`);
    });

    test('combineLosses is the weighted sum of its terms, value and gradient', () => {
      const dice = diceLoss({ mode: 'multiclass', ignoreIndex: 255 });
      const focal = focalLoss({ mode: 'multiclass', ignoreIndex: 255 });
      const combined: LossFn = combineLosses([
        [dice, 0.7],
        [focal, 2],
      ]);
      const x = tf.tensor(logits, [N, 3, 4, C]);
      const [g1, g2, g] = [dice, focal, combined].map((l) =>
        tf
          .grad((p: tf.Tensor) => l(p, target()))(x)
          .dataSync(),
      );
      const v = combined(x, target()).dataSync()[0];
      const expected = 0.7 * dice(x, target()).dataSync()[0] + 2 * focal(x, target()).dataSync()[0];
      assert.ok(Math.abs(v - expected) < 1e-6, `${v} vs ${expected}`);
      for (const [i, gi] of g.entries())
        assert.ok(Math.abs(gi - (0.7 * g1[i] + 2 * g2[i])) < 1e-6, `gradient[${i}]`);
    });
  });
}

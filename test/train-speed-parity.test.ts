/**
 * Gradient parity of the fast training path (issue 13): every trainable parameter of SegFormer-B0, train mode
 * with dropout and drop path off, Dice + CE as the trainer builds it, batch 2 at 64 px. The fast path (wasm with
 * slideseg's fused kernels) is compared with the plain TF.js compositions on wasm and on the cpu backend:
 * max |g − g_ref| ≤ 1e-4 · max |g_ref| for every tensor. BatchNorm running statistics must agree too.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import { Segformer, segformerPreset } from '../src/models/segformer/index.ts';
import { setFusedOps } from '../src/models/segformer/ops.ts';
import { buildLoss } from '../src/train/loss.ts';

const BATCH = 2;
const SIZE = 64;

function pixels(): Float32Array {
  const out = new Float32Array(BATCH * SIZE * SIZE * 3);
  let s = 12345;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 4 - 2;
  }
  return out;
}

function labels(): Int32Array {
  const out = new Int32Array(BATCH * SIZE * SIZE);
  for (let i = 0; i < out.length; i++) {
    const x = i % SIZE;
    const y = Math.floor(i / SIZE) % SIZE;
    out[i] = (x - 30) ** 2 + (y - 20) ** 2 < 300 ? 1 : 0;
  }
  return out;
}

interface Run {
  loss: number;
  grads: Map<string, Float32Array>;
  bn: Map<string, Float32Array>;
}

async function gradients(backend: 'wasm' | 'cpu', fusedOps: boolean): Promise<Run> {
  await ready(backend);
  setFusedOps(fusedOps);
  const config = segformerPreset('b0', {
    numLabels: 2,
    hidden_dropout_prob: 0,
    attention_probs_dropout_prob: 0,
    classifier_dropout_prob: 0,
    drop_path_rate: 0,
  });
  const model = new Segformer(config, { seed: 7 });
  try {
    const trainable = new Set(model.trainableVariables());
    const named = [...model.namedWeights()].filter(([, v]) => trainable.has(v));
    const loss = buildLoss(
      [
        { name: 'dice', weight: 1 },
        { name: 'ce', weight: 1 },
      ],
      2,
      255,
    );
    const x = tf.tensor4d(pixels(), [BATCH, SIZE, SIZE, 3]);
    const y = tf.tensor3d(labels(), [BATCH, SIZE, SIZE], 'int32');
    const { value, grads } = tf.variableGrads(
      () => {
        const logits = model.forward(x, { training: true, seed: 1 }).logits;
        const up = tf.image.resizeBilinear(logits, [SIZE, SIZE], false, true);
        return loss(up, y);
      },
      named.map(([, v]) => v),
    );
    const byName = new Map(named.map(([k, v]) => [v.name, k]));
    const out: Run = { loss: value.dataSync()[0]!, grads: new Map(), bn: new Map() };
    for (const [name, g] of Object.entries(grads))
      out.grads.set(byName.get(name)!, g.dataSync() as Float32Array);
    for (const [k, v] of model.namedWeights()) {
      if (/running_(mean|var)$/.test(k)) out.bn.set(k, v.dataSync() as Float32Array);
    }
    tf.dispose([x, y, value, ...Object.values(grads)]);
    assert.equal(out.grads.size, named.length, 'a gradient for every trainable parameter');
    return out;
  } finally {
    model.dispose();
    setFusedOps(true);
  }
}

/**
 * Parameters whose gradient is exactly zero in exact arithmetic, so both paths hold only rounding noise (~1e-9 of
 * the largest gradient, where a relative comparison means nothing): key biases (softmax is invariant to a shift
 * per query) and whatever only shifts the decode head's input to the training-mode BatchNorm (the per-stage
 * projection biases and the last stage's LayerNorm bias), which the batch mean removes.
 */
const ZERO_IN_EXACT_ARITHMETIC = [
  /attention\.self\.key\.bias$/,
  /^decode_head\.linear_c\.\d\.proj\.bias$/,
  /^segformer\.encoder\.layer_norm\.3\.bias$/,
];

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function compare(got: Run, ref: Run, what: string): void {
  const largest = Math.max(...[...ref.grads.values()].map(maxAbs));
  assert.ok(
    Math.abs(got.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss),
    `${what}: loss ${got.loss} vs ${ref.loss}`,
  );
  assert.deepEqual([...got.grads.keys()].sort(), [...ref.grads.keys()].sort());
  const worst: string[] = [];
  let zeroes = 0;
  for (const [key, r] of ref.grads) {
    const g = got.grads.get(key)!;
    if (ZERO_IN_EXACT_ARITHMETIC.some((re) => re.test(key))) {
      zeroes++;
      assert.ok(maxAbs(g) <= 1e-6 * largest && maxAbs(r) <= 1e-6 * largest, `${what}: ${key} should be ~0`);
      continue;
    }
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < r.length; i++) {
      diff = Math.max(diff, Math.abs(g[i]! - r[i]!));
      scale = Math.max(scale, Math.abs(r[i]!));
    }
    assert.ok(scale > 0, `${what}: ${key} has an all-zero reference gradient (the test would be vacuous)`);
    if (diff > 1e-4 * scale)
      worst.push(`${key}: ${(diff / scale).toExponential(2)} max ${scale.toExponential(2)}`);
  }
  assert.deepEqual(worst, [], `${what}: tensors beyond 1e-4 relative error`);
  assert.equal(zeroes, 4 + 8 + 1, 'the exactly-zero gradients are the expected ones');
  for (const [key, r] of ref.bn) {
    const g = got.bn.get(key)!;
    for (let i = 0; i < r.length; i++) {
      assert.ok(Math.abs(g[i]! - r[i]!) <= 1e-5 * Math.max(1, Math.abs(r[i]!)), `${what}: ${key}[${i}]`);
    }
  }
}

after(() => setFusedOps(true));

describe('SegFormer-B0 training gradients: fast path vs plain TF.js', () => {
  it('every parameter, wasm fused vs wasm composed vs cpu composed', async () => {
    const fast = await gradients('wasm', true);
    const wasmRef = await gradients('wasm', false);
    compare(fast, wasmRef, 'wasm fused vs wasm composed');
    const cpuRef = await gradients('cpu', false);
    compare(fast, cpuRef, 'wasm fused vs cpu composed');
    const cpuFused = await gradients('cpu', true);
    compare(cpuFused, cpuRef, 'cpu fused vs cpu composed');
  });
});

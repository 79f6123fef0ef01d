/**
 * SegFormer train mode: one training step's gradients agree between the wasm and cpu backends and with central
 * finite differences; BatchNorm uses batch statistics and updates its running statistics as PyTorch does;
 * dropout / drop path are seeded.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import type { Segformer } from '../src/models/segformer/index.ts';
import { loadSegformer } from '../src/models/segformer/index.ts';
import { fixture } from './fixtures.ts';

const TINY = fixture('segformer', 'segformer-tiny');
const SEED = 123;
/**
 * Parameters whose true gradient is exactly zero: the decode head's per-stage biases and the last stage's
 * LayerNorm bias (per-channel shifts that BatchNorm's batch-mean subtraction removes), and the attention key
 * biases (q·b is the same for every key, and softmax ignores it).
 */
const ZERO_GRADIENT =
  /^decode_head\.linear_c\.\d\.proj\.bias$|^segformer\.encoder\.layer_norm\.3\.bias$|attention\.self\.key\.bias$/;

interface Step {
  loss: number;
  grads: Map<string, Float32Array>;
}

function inputs(): { x: tf.Tensor4D; target: tf.Tensor4D } {
  // Seeded on the JS side, so both backends see the same numbers.
  return {
    x: tf.randomNormal([2, 64, 96, 3], 0, 1, 'float32', 1) as tf.Tensor4D,
    target: tf.randomNormal([2, 16, 24, 3], 0, 1, 'float32', 2) as tf.Tensor4D,
  };
}

/** A smooth loss of the logits in training mode (dropout, drop path and BatchNorm batch statistics active). */
function lossOf(model: Segformer, x: tf.Tensor4D, target: tf.Tensor4D, unfoldedDecoder = false): tf.Scalar {
  return tf.tidy(() => {
    const { logits } = model.forward(x, { training: true, seed: SEED, unfoldedDecoder });
    return tf.sum(tf.mul(logits, target)) as tf.Scalar;
  });
}

async function trainingStep(backend: string, unfoldedDecoder = false): Promise<Step> {
  await ready(backend);
  const { model } = await loadSegformer(TINY);
  const { x, target } = inputs();
  const names = new Map<string, string>();
  for (const [key, v] of model.namedWeights()) names.set(v.name, key);
  const { value, grads } = tf.variableGrads(
    () => lossOf(model, x, target, unfoldedDecoder),
    model.trainableVariables(),
  );
  const out: Step = { loss: value.dataSync()[0], grads: new Map() };
  for (const [name, g] of Object.entries(grads))
    out.grads.set(names.get(name)!, g.dataSync() as Float32Array);
  tf.dispose([value, x, target, ...Object.values(grads)]);
  model.dispose();
  return out;
}

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe('SegFormer training step', () => {
  let wasm: Step;
  let cpu: Step;
  let wasmUnfolded: Step;
  before(async () => {
    wasm = await trainingStep('wasm');
    wasmUnfolded = await trainingStep('wasm', true);
    cpu = await trainingStep('cpu');
  });

  it('the folded decode head has the gradients of the layer-by-layer (PyTorch-shaped) one', () => {
    assert.ok(Math.abs(wasm.loss - wasmUnfolded.loss) <= 1e-4 * Math.abs(wasm.loss));
    const globalMax = Math.max(...[...wasmUnfolded.grads.values()].map(maxAbs));
    for (const [key, a] of wasmUnfolded.grads) {
      const b = wasm.grads.get(key)!;
      const scale = ZERO_GRADIENT.test(key) ? globalMax * 1e-2 : maxAbs(a);
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      assert.ok(worst <= 1e-3 * scale, `${key}: max |folded - unfolded| ${worst} vs max |grad| ${scale}`);
    }
  });

  it('has a gradient for every trainable parameter on both backends, agreeing within 1e-3', async () => {
    await ready('cpu');
    const { model } = await loadSegformer(TINY);
    const keys = model
      .paramSpecs()
      .filter((s) => s.trainable)
      .map((s) => s.key);
    model.dispose();
    assert.deepEqual([...cpu.grads.keys()].sort(), [...keys].sort());
    assert.deepEqual([...wasm.grads.keys()].sort(), [...keys].sort());
    assert.ok(
      Math.abs(wasm.loss - cpu.loss) <= 1e-4 * Math.abs(cpu.loss),
      `loss ${wasm.loss} vs ${cpu.loss}`,
    );
    const globalMax = Math.max(...[...cpu.grads.values()].map(maxAbs));
    for (const key of keys) {
      const a = cpu.grads.get(key)!;
      const b = wasm.grads.get(key)!;
      if (ZERO_GRADIENT.test(key)) {
        assert.ok(maxAbs(a) <= 1e-5 * globalMax && maxAbs(b) <= 1e-5 * globalMax, `${key} gradient vanishes`);
        continue;
      }
      const scale = maxAbs(a);
      assert.ok(scale > 0, `${key} has a non-zero gradient`);
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      assert.ok(worst <= 1e-3 * scale, `${key}: max |cpu - wasm| ${worst} vs max |grad| ${scale}`);
    }
  });

  it('matches central finite differences (cpu)', async () => {
    await ready('cpu');
    const { model } = await loadSegformer(TINY);
    const { x, target } = inputs();
    const weights = model.namedWeights();
    const checked = [
      'segformer.encoder.patch_embeddings.0.proj.weight', // strided conv with explicit padding
      'segformer.encoder.block.0.0.attention.self.sr.weight', // sequence-reduction conv
      'segformer.encoder.block.2.1.mlp.dwconv.dwconv.weight', // depthwise conv
      'segformer.encoder.block.3.0.attention.self.query.weight', // 4-head attention
      'decode_head.linear_c.3.proj.weight', // through the bilinear upsampling
      'decode_head.linear_fuse.weight',
      'decode_head.batch_norm.weight',
    ];
    for (const key of checked) {
      const v = weights.get(key)!;
      const g = cpu.grads.get(key)!;
      const norm = Math.sqrt(g.reduce((s, e) => s + e * e, 0));
      // Directional derivative along the gradient: d/dh L(w + h g/|g|) = |g| for the true gradient.
      const original = v.clone();
      const direction = tf.div(tf.tensor(g, v.shape), norm);
      const h = 1e-2; // float32 loss: smaller steps drown in rounding
      const at = (step: number) => {
        v.assign(tf.tidy(() => tf.add(original, tf.mul(direction, step))));
        return lossOf(model, x, target).dataSync()[0];
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      v.assign(original);
      tf.dispose([original, direction]);
      assert.ok(Math.abs(fd - norm) <= 1e-2 * norm, `${key}: finite difference ${fd} vs |grad| ${norm}`);
    }
    tf.dispose([x, target]);
    model.dispose();
  });
});

describe('SegFormer train and eval modes', () => {
  it('BatchNorm uses batch statistics and updates running stats with momentum 0.1 and unbiased variance', async () => {
    await ready('wasm');
    const { model } = await loadSegformer(TINY);
    const { x } = inputs();
    const w = model.namedWeights();
    const bn = 'decode_head.batch_norm';
    const mean0 = w.get(`${bn}.running_mean`)!.dataSync().slice();
    const var0 = w.get(`${bn}.running_var`)!.dataSync().slice();
    const tracked0 = w.get(`${bn}.num_batches_tracked`)!.dataSync()[0];
    const out = model.forward(x, { training: true, outputHiddenStates: true, seed: 9 });

    // The decode head's pre-BatchNorm activations, recomputed here from the returned stage outputs.
    const { mean, unbiasedVar } = tf.tidy(() => {
      const [n, h1, w1] = out.hiddenStates![0].shape;
      const ups = out.hiddenStates!.map((s, i) => {
        const [, h, ww, c] = s.shape;
        const wt = tf.transpose(w.get(`decode_head.linear_c.${i}.proj.weight`)!); // [D, C]
        const y = tf.add(
          tf.matMul(tf.reshape(s, [n * h * ww, c]), wt, false, true),
          w.get(`decode_head.linear_c.${i}.proj.bias`)!,
        );
        const img = tf.reshape(y, [n, h, ww, -1]) as tf.Tensor4D;
        return h === h1 && ww === w1 ? img : tf.image.resizeBilinear(img, [h1, w1], false, true);
      });
      const fuse = w.get('decode_head.linear_fuse.weight')!;
      const cat = tf.concat(ups.reverse(), 3);
      const y = tf.matMul(
        tf.reshape(cat, [n * h1 * w1, -1]),
        tf.reshape(fuse, [fuse.shape[2]!, fuse.shape[3]!]),
      );
      const m = tf.moments(y, 0);
      const count = n * h1 * w1;
      return { mean: m.mean, unbiasedVar: tf.mul(m.variance, count / (count - 1)) };
    });
    const bm = mean.dataSync();
    const bv = unbiasedVar.dataSync();
    const mean1 = w.get(`${bn}.running_mean`)!.dataSync();
    const var1 = w.get(`${bn}.running_var`)!.dataSync();
    for (let c = 0; c < bm.length; c++) {
      assert.ok(Math.abs(mean1[c] - (0.9 * mean0[c] + 0.1 * bm[c])) < 1e-5, `running_mean[${c}]`);
      assert.ok(
        Math.abs(var1[c] - (0.9 * var0[c] + 0.1 * bv[c])) < 1e-4 * Math.max(1, var1[c]),
        `running_var[${c}]`,
      );
    }
    assert.equal(w.get(`${bn}.num_batches_tracked`)!.dataSync()[0], tracked0 + 1);

    // Eval mode leaves the statistics alone and is deterministic.
    const e1 = model.forward(x).logits;
    const e2 = model.forward(x).logits;
    assert.deepEqual([...e1.dataSync()], [...e2.dataSync()]);
    assert.deepEqual([...w.get(`${bn}.running_mean`)!.dataSync()], [...mean1]);
    assert.equal(w.get(`${bn}.num_batches_tracked`)!.dataSync()[0], tracked0 + 1);
    tf.dispose([mean, unbiasedVar, e1, e2, out.logits, ...out.hiddenStates!, x]);
    model.dispose();
  });

  it('dropout and drop path follow the seed in train mode', async () => {
    await ready('wasm');
    const { model } = await loadSegformer(TINY);
    const { x } = inputs();
    const a = model.forward(x, { training: true, seed: 1 }).logits;
    const b = model.forward(x, { training: true, seed: 1 }).logits;
    const c = model.forward(x, { training: true, seed: 2 }).logits;
    assert.deepEqual([...a.dataSync()], [...b.dataSync()]);
    const diff = tf.max(tf.abs(tf.sub(a, c))).dataSync()[0];
    assert.ok(diff > 1e-3, `different seeds give different masks (max diff ${diff})`);
    tf.dispose([a, b, c, x]);
    model.dispose();
  });
});

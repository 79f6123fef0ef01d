/**
 * Loss values and gradients against segmentation_models_pytorch v0.5.0 and HobbitLong/SupContrast
 * (losses.json, NCHW, float64 except Lovasz), on both the wasm and cpu backends.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import {
  diceLoss,
  focalLoss,
  jaccardLoss,
  type LossFn,
  lovaszLoss,
  mccLoss,
  softBCEWithLogitsLoss,
  softCrossEntropyLoss,
  supConLoss,
  tverskyLoss,
} from '../src/losses/index.ts';
import { fixture } from './fixtures.ts';

interface Array_ {
  shape: number[];
  data: number[];
  dtype?: string;
}
interface LossCase {
  name: string;
  loss: string;
  params: Record<string, unknown>;
  input: Array_;
  target: Array_ | null;
  value: number;
  grad: Array_;
}

const cases = (JSON.parse(readFileSync(fixture('losses', 'losses.json'), 'utf8')) as { cases: LossCase[] })
  .cases;

/** The reference's keyword arguments in camelCase (`log_loss` -> `logLoss`). */
function camelCase(params: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(params).map(([k, v]) => [k.replace(/_([a-z])/g, (_, ch) => ch.toUpperCase()), v]),
  );
}

// biome-ignore lint/suspicious/noExplicitAny: options are built from JSON and checked by the factories.
const factories: Record<string, (options: any) => LossFn> = {
  DiceLoss: diceLoss,
  JaccardLoss: jaccardLoss,
  TverskyLoss: tverskyLoss,
  FocalLoss: focalLoss,
  SoftBCEWithLogitsLoss: softBCEWithLogitsLoss,
  SoftCrossEntropyLoss: softCrossEntropyLoss,
  // smp's MCCLoss takes probabilities: no activation.
  MCCLoss: (options) => mccLoss({ ...options, fromLogits: false }),
  LovaszLoss: lovaszLoss,
};

/** NCHW -> NHWC for rank-4 arrays; other ranks are already in the shared layout. */
function channelsLast(x: tf.Tensor): tf.Tensor {
  return x.rank === 4 ? tf.transpose(x, [0, 2, 3, 1]) : x;
}

function toTensor(a: Array_, dtype: 'float32' | 'int32'): tf.Tensor {
  return tf.tensor(a.data, a.shape, dtype);
}

/** value and d(value)/d(input), the gradient back in the reference's layout. */
function evaluate(c: LossCase): { value: number; grad: Float32Array } {
  return tf.tidy(() => {
    const input = channelsLast(toTensor(c.input, 'float32'));
    const params = camelCase(c.params);
    let fn: (x: tf.Tensor) => tf.Scalar;
    if (c.loss === 'SupConLoss') {
      const labels = c.target == null ? null : toTensor(c.target, 'int32');
      const loss = supConLoss(params);
      fn = (x) => loss(x, labels);
    } else {
      const integer = c.target?.dtype === 'int64';
      const target = channelsLast(toTensor(c.target as Array_, integer ? 'int32' : 'float32'));
      const loss = factories[c.loss](params);
      fn = (x) => loss(x, target);
    }
    const { value, grad } = tf.valueAndGrad(fn)(input);
    const back = grad.rank === 4 ? tf.transpose(grad, [0, 3, 1, 2]) : grad;
    return { value: value.dataSync()[0], grad: back.dataSync() as Float32Array };
  });
}

for (const backend of ['wasm', 'cpu']) {
  describe(`losses parity on ${backend}`, () => {
    before(async () => {
      await ready(backend);
    });
    for (const c of cases) {
      test(c.name, () => {
        const { value, grad } = evaluate(c);
        const valueTolerance = c.loss === 'LovaszLoss' ? 1e-4 : 1e-5;
        const valueError = Math.abs(value - c.value) / Math.max(Math.abs(c.value), 1e-12);
        assert.ok(
          valueError <= valueTolerance,
          `${c.name} [${backend}]: value ${value} vs reference ${c.value} (relative error ${valueError.toExponential(2)})`,
        );
        assert.equal(grad.length, c.grad.data.length, `${c.name}: gradient size`);
        let scale = 0;
        let worst = 0;
        let worstAt = 0;
        for (let i = 0; i < grad.length; i++) {
          scale = Math.max(scale, Math.abs(c.grad.data[i]));
          const e = Math.abs(grad[i] - c.grad.data[i]);
          if (e > worst) {
            worst = e;
            worstAt = i;
          }
        }
        assert.ok(scale > 0, `${c.name}: reference gradient is all zero`);
        assert.ok(
          worst <= 1e-4 * scale,
          `${c.name} [${backend}]: gradient[${worstAt}] = ${grad[worstAt]} vs ${c.grad.data[worstAt]} (error ${(worst / scale).toExponential(2)} of max |grad| ${scale.toExponential(2)})`,
        );
      });
    }
  });
}

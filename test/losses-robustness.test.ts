/**
 * Degenerate batches (empty or full masks, one pixel, saturated logits, everything ignored) give finite values
 * and gradients; malformed targets fail eagerly with a message naming the problem.
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
  jaccardLoss,
  type LossFn,
  lovaszLoss,
  type Mode,
  mccLoss,
  softBCEWithLogitsLoss,
  softCrossEntropyLoss,
  supConLoss,
  tverskyLoss,
} from '../src/losses/index.ts';

const IGNORE = 255;

/** Every loss, by the target layout it takes. */
function lossesFor(mode: Mode): Array<[string, LossFn]> {
  const common: Array<[string, LossFn]> = [
    ['dice', diceLoss({ mode, ignoreIndex: IGNORE })],
    ['dice log', diceLoss({ mode, logLoss: true, ignoreIndex: IGNORE })],
    ['jaccard', jaccardLoss({ mode, ignoreIndex: IGNORE, smooth: 1 })],
    ['tversky', tverskyLoss({ mode, alpha: 0.3, beta: 0.7, gamma: 4 / 3, ignoreIndex: IGNORE })],
    ['focal', focalLoss({ mode, alpha: 0.25, ignoreIndex: IGNORE })],
    ['focal normalized', focalLoss({ mode, gamma: 1.5, normalized: true, ignoreIndex: IGNORE })],
    ['focal reduced', focalLoss({ mode, reducedThreshold: 0.5, ignoreIndex: IGNORE })],
    ['focal gamma 0', focalLoss({ mode, gamma: 0, ignoreIndex: IGNORE })],
    ['lovasz', lovaszLoss({ mode, ignoreIndex: IGNORE })],
    ['lovasz per image', lovaszLoss({ mode, perImage: true, ignoreIndex: IGNORE })],
  ];
  if (mode === 'multiclass') {
    return [
      ...common,
      ['softCE', softCrossEntropyLoss({ smoothFactor: 0.1, ignoreIndex: IGNORE })],
      ['crossEntropy', crossEntropyLoss({ ignoreIndex: IGNORE, labelSmoothing: 0.1, weight: [1, 2, 0.5] })],
      [
        'combined',
        combineLosses([
          [diceLoss({ mode, ignoreIndex: IGNORE }), 1],
          [focalLoss({ mode, ignoreIndex: IGNORE }), 2],
        ]),
      ],
    ];
  }
  const sigmoidLosses: Array<[string, LossFn]> = [
    ...common,
    ['softBCE', softBCEWithLogitsLoss({ smoothFactor: 0.1, ignoreIndex: IGNORE, posWeight: 2 })],
  ];
  if (mode === 'binary') {
    sigmoidLosses.push(
      ['mcc', mccLoss()],
      ['mcc paper', mccLoss({ variant: 'paper' })],
      ['bce', bceWithLogitsLoss()],
    );
  }
  return sigmoidLosses;
}

interface Batch {
  name: string;
  predShape: number[];
  pred: (i: number) => number;
  target: (i: number) => number;
  /** Whether the batch contains ignoreIndex (losses without ignore support are skipped). */
  ignored?: boolean;
}

function batches(mode: Mode): Batch[] {
  const c = mode === 'binary' ? 1 : 3;
  const shape = [2, 4, 5, c];
  const wave = (i: number) => 3 * Math.sin(i * 1.7);
  const last = mode === 'multiclass' ? c - 1 : 1;
  return [
    { name: 'all background (empty masks)', predShape: shape, pred: wave, target: () => 0 },
    { name: 'all foreground', predShape: shape, pred: wave, target: () => last },
    { name: 'one pixel', predShape: [1, 1, 1, c], pred: () => 0.3, target: () => last },
    {
      name: 'logits +-100',
      predShape: shape,
      pred: (i) => (i % 3 === 0 ? 100 : -100),
      target: (i) => (i % 2 ? last : 0),
    },
    {
      name: 'logits +-100, all foreground',
      predShape: shape,
      pred: (i) => (i % 2 ? 100 : -100),
      target: () => last,
    },
    { name: 'only ignoreIndex', predShape: shape, pred: wave, target: () => IGNORE, ignored: true },
  ];
}

function makeTarget(mode: Mode, batch: Batch): tf.Tensor {
  const shape = mode === 'multiclass' ? batch.predShape.slice(0, -1) : batch.predShape;
  const size = shape.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: size }, (_, i) => batch.target(i));
  return tf.tensor(values, shape, mode === 'multiclass' ? 'int32' : 'float32');
}

function assertFinite(label: string, loss: LossFn, pred: tf.Tensor, target: tf.Tensor): void {
  const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => loss(x, target))(pred);
  const v = value.dataSync()[0];
  assert.ok(Number.isFinite(v), `${label}: value ${v}`);
  const g = grad.dataSync();
  const bad = g.findIndex((x) => !Number.isFinite(x));
  assert.equal(bad, -1, `${label}: gradient[${bad}] = ${g[bad]}`);
  tf.dispose([value, grad]);
}

for (const backend of ['wasm', 'cpu']) {
  describe(`degenerate batches on ${backend}`, () => {
    before(async () => {
      await ready(backend);
    });
    for (const mode of ['binary', 'multiclass', 'multilabel'] as Mode[]) {
      for (const batch of batches(mode)) {
        test(`${mode}: ${batch.name}`, () => {
          const size = batch.predShape.reduce((a, b) => a * b, 1);
          const pred = tf.tensor(
            Array.from({ length: size }, (_, i) => batch.pred(i)),
            batch.predShape,
          );
          const target = makeTarget(mode, batch);
          for (const [name, loss] of lossesFor(mode)) {
            if (batch.ignored && (name.startsWith('mcc') || name === 'bce')) continue;
            assertFinite(`${mode} ${batch.name} ${name}`, loss, pred, target);
          }
          tf.dispose([pred, target]);
        });
      }
    }

    test('everything ignored gives a zero loss and a zero gradient', () => {
      const pred = tf.randomNormal([2, 3, 3, 3], 0, 2, 'float32', 7);
      const target = tf.fill([2, 3, 3], IGNORE, 'int32');
      for (const [name, loss] of lossesFor('multiclass')) {
        const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => loss(x, target))(pred);
        assert.ok(value.dataSync()[0] === 0, `${name}: value ${value.dataSync()[0]}`);
        assert.ok(
          grad.dataSync().every((g) => g === 0),
          `${name}: gradient not zero`,
        );
      }
    });

    test('supConLoss: identical features, one sample, and saturated similarities stay finite', () => {
      const same = tf.tidy(() => tf.div(tf.ones([4, 2, 8]), Math.sqrt(8)));
      const single = tf.tensor3d([
        [
          [1, 0],
          [0, 1],
        ],
      ]);
      for (const variant of ['out', 'in'] as const) {
        const loss = supConLoss({ temperature: 0.01, variant });
        for (const [label, features, labels] of [
          ['identical', same, tf.tensor1d([0, 1, 0, 1], 'int32')],
          ['identical, no labels', same, null],
          ['one sample', single, null],
          ['no positives but self', same, tf.tensor1d([0, 1, 2, 3], 'int32')],
        ] as Array<[string, tf.Tensor, tf.Tensor | null]>) {
          const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => loss(x, labels))(features);
          assert.ok(Number.isFinite(value.dataSync()[0]), `${variant} ${label}: value`);
          assert.ok(grad.dataSync().every(Number.isFinite), `${variant} ${label}: gradient`);
        }
      }
    });
  });
}

describe('bad targets fail eagerly, naming the problem', () => {
  before(async () => {
    await ready('wasm');
  });
  const pred3 = () => tf.zeros([2, 4, 4, 3]);
  const pred1 = () => tf.zeros([2, 4, 4, 1]);

  test('multiclass class index out of range', () => {
    const target = tf.fill([2, 4, 4], 3, 'int32');
    for (const loss of [
      diceLoss({ mode: 'multiclass' }),
      focalLoss({ mode: 'multiclass' }),
      softCrossEntropyLoss(),
      crossEntropyLoss(),
      lovaszLoss({ mode: 'multiclass' }),
    ]) {
      assert.throws(() => loss(pred3(), target), /target value 3 .*out of range: classes are 0\.\.2/);
    }
    assert.throws(
      () => diceLoss({ mode: 'multiclass' })(pred3(), tf.fill([2, 4, 4], -1, 'int32')),
      /target value -1/,
    );
    // 255 is only accepted when it is the ignore value.
    assert.throws(
      () => diceLoss({ mode: 'multiclass' })(pred3(), tf.fill([2, 4, 4], 255, 'int32')),
      /target value 255/,
    );
  });

  test('binary and multilabel values outside [0, 1]', () => {
    assert.throws(
      () => diceLoss({ mode: 'binary' })(pred1(), tf.fill([2, 4, 4, 1], 2)),
      /target value 2 .*\[0, 1\]/,
    );
    assert.throws(() => mccLoss()(pred1(), tf.fill([2, 4, 4, 1], -0.5)), /target value -0.5/);
    assert.throws(
      () => jaccardLoss({ mode: 'multilabel' })(pred3(), tf.fill([2, 4, 4, 3], Number.NaN)),
      /target value NaN/,
    );
    assert.throws(() => softBCEWithLogitsLoss()(pred1(), tf.fill([2, 4, 4, 1], 255)), /target value 255/);
  });

  test('wrong shapes', () => {
    assert.throws(
      () => diceLoss({ mode: 'multiclass' })(pred3(), tf.zeros([2, 4, 5], 'int32')),
      /multiclass target must have shape \[2,4,4\].*got \[2,4,5\]/,
    );
    assert.throws(
      () => diceLoss({ mode: 'multiclass' })(pred3(), tf.zeros([2, 4, 4, 3], 'int32')),
      /must have shape \[2,4,4\]/,
    );
    assert.throws(
      () => focalLoss({ mode: 'multilabel' })(pred3(), tf.zeros([2, 4, 4, 1])),
      /multilabel target must have shape \[2,4,4,3\]/,
    );
    assert.throws(
      () => diceLoss({ mode: 'binary' })(pred3(), tf.zeros([2, 4, 4, 3])),
      /binary mode needs pred with 1 channel/,
    );
    assert.throws(
      () => lovaszLoss({ mode: 'binary' })(pred1(), tf.zeros([1, 4, 4, 1])),
      /binary target must have shape \[2,4,4,1\]/,
    );
    assert.throws(
      () => supConLoss()(tf.zeros([4, 2, 8]), tf.zeros([3], 'int32')),
      /labels must have shape \[4\]/,
    );
    assert.throws(() => supConLoss()(tf.zeros([4, 8])), /rank >= 3/);
  });

  test('wrong dtypes', () => {
    assert.throws(
      () => diceLoss({ mode: 'multiclass' })(pred3(), tf.zeros([2, 4, 4])),
      /multiclass target must be int32 class indices, got dtype float32/,
    );
    assert.throws(
      () => diceLoss({ mode: 'binary' })(tf.zeros([2, 4, 4, 1], 'int32'), tf.zeros([2, 4, 4, 1])),
      /pred must be float32, got int32/,
    );
    assert.throws(() => supConLoss()(tf.zeros([4, 2, 8]), tf.zeros([4])), /labels must be int32/);
  });

  test('bad options', () => {
    assert.throws(
      () => diceLoss({ mode: 'segmentation' as Mode }),
      /mode must be one of binary, multiclass, multilabel/,
    );
    assert.throws(
      () => diceLoss({ mode: 'binary', classes: [0] }),
      /classes cannot be used with mode 'binary'/,
    );
    assert.throws(
      () => diceLoss({ mode: 'multiclass', classes: [5] })(pred3(), tf.zeros([2, 4, 4], 'int32')),
      /out of range for 3 channels/,
    );
    assert.throws(
      () => focalLoss({ mode: 'binary', reduction: 'none' as 'mean' }),
      /reduction must be 'mean' or 'sum'/,
    );
    assert.throws(
      () => crossEntropyLoss({ weight: [1, 2] })(pred3(), tf.zeros([2, 4, 4], 'int32')),
      /weight has 2 entries but pred has 3 classes/,
    );
    assert.throws(() => combineLosses([]), /at least one/);
  });
});

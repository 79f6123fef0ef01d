/** Segmentation and classification metrics against scikit-learn 1.2 golden values (metrics.json). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import { ConfusionMatrix, classificationMetrics, segmentationMetrics } from '../src/metrics/index.ts';
import { fixture } from './fixtures.ts';

interface SegCase {
  kind: 'segmentation';
  num_classes: number;
  ignore_index: number | null;
  pred: { shape: number[]; data: number[] };
  target: { shape: number[]; data: number[] };
  confusion_matrix: number[][];
  iou: (number | null)[];
  dice: (number | null)[];
  precision: (number | null)[];
  recall: (number | null)[];
  mIoU: number;
  mDice: number;
  aAcc: number;
  mcc?: number;
}
interface ClsCase {
  kind: 'classification';
  num_classes: number;
  labels: number[];
  scores: number[][];
  pred: number[];
  accuracy: number;
  balanced_accuracy: number;
  macro_f1: number;
  mcc: number;
  auroc: number;
}

const cases = (
  JSON.parse(readFileSync(fixture('metrics', 'metrics.json'), 'utf8')) as { cases: (SegCase | ClsCase)[] }
).cases;
const TOL = 1e-9;

function close(actual: number | null, expected: number | null, what: string): void {
  if (expected == null) {
    assert.equal(actual, null, `${what}: expected null`);
    return;
  }
  assert.ok(actual != null && Math.abs(actual - expected) <= TOL, `${what}: ${actual} vs ${expected}`);
}

function closeList(actual: (number | null)[], expected: (number | null)[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (const [i, e] of expected.entries()) close(actual[i]!, e, `${what}[${i}]`);
}

const segCases = cases.filter((c): c is SegCase => c.kind === 'segmentation');
const clsCases = cases.filter((c): c is ClsCase => c.kind === 'classification');

test('fixture has segmentation and classification cases', () => {
  assert.ok(segCases.length >= 5 && clsCases.length >= 3, 'fixture cases present');
});

segCases.forEach((c, index) => {
  test(`segmentation case ${index}: ${c.num_classes} classes, ignore ${c.ignore_index}`, async () => {
    await ready('cpu');
    // Stream image by image from tensors, the way an evaluation loop feeds it.
    const [N, H, W] = c.target.shape as [number, number, number];
    const cm = new ConfusionMatrix(c.num_classes, { ignoreIndex: c.ignore_index, perImage: true });
    for (let i = 0; i < N; i++) {
      const slice = (d: number[]) => tf.tensor2d(d.slice(i * H * W, (i + 1) * H * W), [H, W], 'int32');
      const p = slice(c.pred.data);
      const t = slice(c.target.data);
      cm.update(p, t);
      p.dispose();
      t.dispose();
    }
    const m = cm.compute();
    assert.deepEqual(m.matrix, c.confusion_matrix);
    closeList(m.iou, c.iou, 'iou');
    closeList(m.dice, c.dice, 'dice');
    closeList(m.precision, c.precision, 'precision');
    closeList(m.recall, c.recall, 'recall');
    close(m.mIoU, c.mIoU, 'mIoU');
    close(m.mDice, c.mDice, 'mDice');
    close(m.aAcc, c.aAcc, 'aAcc');
    if (c.mcc != null) close(m.mcc, c.mcc, 'mcc');

    // Per-image matrices add up to the whole, and each equals a one-image evaluation.
    assert.equal(m.perImage!.length, N);
    const summed = c.confusion_matrix.map((row) => row.map(() => 0));
    for (let i = 0; i < N; i++) {
      const part = (d: number[]) => Int32Array.from(d.slice(i * H * W, (i + 1) * H * W));
      const alone = new ConfusionMatrix(c.num_classes, { ignoreIndex: c.ignore_index });
      alone.update(part(c.pred.data), part(c.target.data));
      assert.deepEqual(m.perImage![i]!.matrix, alone.compute().matrix);
      m.perImage![i]!.matrix.forEach((row, r) => {
        row.forEach((v, k) => {
          summed[r]![k]! += v;
        });
      });
    }
    assert.deepEqual(summed, c.confusion_matrix);

    // Whole batch at once as an [N,H,W] tensor splits into the same per-image results.
    const batch = segmentationMetrics(
      tf.tensor3d(c.pred.data, [N, H, W], 'int32'),
      tf.tensor3d(c.target.data, [N, H, W], 'int32'),
      c.num_classes,
      { ignoreIndex: c.ignore_index, perImage: true },
    );
    assert.deepEqual(batch.matrix, c.confusion_matrix);
    assert.deepEqual(
      batch.perImage!.map((r) => r.matrix),
      m.perImage!.map((r) => r.matrix),
    );
  });
});

clsCases.forEach((c, index) => {
  test(`classification case ${index}: ${c.num_classes} classes`, () => {
    const m = classificationMetrics(c.labels, c.scores);
    assert.deepEqual(m.pred, c.pred);
    close(m.accuracy, c.accuracy, 'accuracy');
    close(m.balancedAccuracy, c.balanced_accuracy, 'balancedAccuracy');
    close(m.macroF1, c.macro_f1, 'macroF1');
    close(m.mcc, c.mcc, 'mcc');
    close(m.auroc, c.auroc, 'auroc');
    // Flat row-major scores give the same answer.
    const flat = classificationMetrics(
      Int32Array.from(c.labels),
      Float64Array.from(c.scores.flat()),
      c.num_classes,
    );
    close(flat.auroc, c.auroc, 'auroc (flat)');
  });
});

test('AUROC handles tied scores as scikit-learn (half credit per tied pair)', () => {
  // labels [0,0,1,1], class-1 scores [0.1,0.4,0.35,0.8]: sklearn 0.75; tie all → 0.5.
  const scores = [0.1, 0.4, 0.35, 0.8].map((s) => [1 - s, s]);
  close(classificationMetrics([0, 0, 1, 1], scores).auroc, 0.75, 'auroc');
  const tied = [0.5, 0.5, 0.5, 0.5].map((s) => [1 - s, s]);
  close(classificationMetrics([0, 0, 1, 1], tied).auroc, 0.5, 'auroc ties');
  // Partial ties: sklearn roc_auc_score([0,1,0,1],[0.2,0.2,0.3,0.9]) = 0.625.
  const partial = [0.2, 0.2, 0.3, 0.9].map((s) => [1 - s, s]);
  close(classificationMetrics([0, 1, 0, 1], partial).auroc, 0.625, 'auroc partial ties');
  assert.equal(
    classificationMetrics(
      [1, 1],
      [
        [0.2, 0.8],
        [0.4, 0.6],
      ],
    ).auroc,
    null,
  );
});

test('bad inputs are refused with a clear message', () => {
  const cm = new ConfusionMatrix(3, { ignoreIndex: 255 });
  assert.throws(() => cm.update([0, 1], [0, 1, 2]), /pred has 2 elements, target has 3/);
  assert.throws(() => cm.update([0, 3], [0, 1]), /pred\[1\] = 3 is not a class index in \[0, 3\)/);
  assert.throws(() => cm.update([0, 1], [0, 1.5]), /target\[1\] = 1.5/);
  cm.update([0, 7], [0, 255]); // ignored target pixel: its prediction is not looked at
  assert.deepEqual(cm.compute().matrix, [
    [1, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
  ]);
  assert.throws(() => new ConfusionMatrix(2).compute(), /no pixel counted/);
  assert.throws(() => new ConfusionMatrix(0), /positive integer/);
});

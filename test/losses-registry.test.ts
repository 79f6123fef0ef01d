/**
 * The loss registry: one-line errors for unknown and mis-moded losses listing the valid names, ignoreIndex honoured
 * by every loss (changing the logits of ignored pixels changes neither the value nor the other pixels' gradient),
 * soft-bce's two smoothing parameterisations, and the README's table generated from the registry.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import { buildLoss, LOSSES, lossTableMarkdown, softBCEWithLogitsLoss } from '../src/losses/index.ts';
import { ROOT } from './fixtures.ts';

before(async () => {
  await ready('cpu');
});

const IGNORE = 255;

test('an unknown loss is a one-line error listing the valid names', () => {
  assert.throws(
    () => buildLoss([{ name: 'hinge' }], 2, IGNORE),
    (e: Error) =>
      !e.message.includes('\n') &&
      /unknown loss 'hinge'/.test(e.message) &&
      /ce, soft-ce/.test(e.message) &&
      /dice/.test(e.message),
  );
});

test('a binary loss on a multiclass model, and a multiclass loss on a one-logit model, are refused', () => {
  for (const name of ['mcc', 'bce', 'soft-bce']) {
    assert.throws(
      () => buildLoss([{ name }], 3, IGNORE),
      (e: Error) =>
        !e.message.includes('\n') &&
        e.message.includes(`loss '${name}' is not defined for a multiclass model`) &&
        e.message.includes('valid here: ce, soft-ce'),
    );
  }
  for (const name of ['ce', 'soft-ce', 'cross-entropy']) {
    assert.throws(
      () => buildLoss([{ name }], 1, IGNORE),
      (e: Error) =>
        e.message.includes(`loss '${name}' is not defined for a one-logit (binary) model`) &&
        e.message.includes('bce'),
    );
  }
});

test('bad options name the loss', () => {
  assert.throws(() => buildLoss([{ name: 'mcc', variant: 'other' }], 1, IGNORE), /loss 'mcc': .*variant/);
  assert.throws(
    () => buildLoss([{ name: 'dice', weight: 'x' as unknown as number }], 2, IGNORE),
    /loss 'dice': weight/,
  );
});

/** Random logits and a target with some ignored pixels; the same logits with the ignored ones replaced. */
function batch(channels: number, seed: number) {
  const n = 2;
  const h = 6;
  const w = 5;
  const target = new Int32Array(n * h * w);
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s / 2 ** 32;
  };
  for (let i = 0; i < target.length; i++)
    target[i] = rand() < 0.2 ? IGNORE : Math.floor(rand() * Math.max(2, channels));
  const logits = Float32Array.from({ length: n * h * w * channels }, () => rand() * 4 - 2);
  const changed = logits.slice();
  for (let i = 0; i < target.length; i++)
    if (target[i] === IGNORE) for (let c = 0; c < channels; c++) changed[i * channels + c] = rand() * 20 - 10;
  return {
    shape: [n, h, w, channels] as [number, number, number, number],
    target: tf.tensor3d(target, [n, h, w], 'int32'),
    logits,
    changed,
    ignored: target.map((v) => (v === IGNORE ? 1 : 0)),
  };
}

for (const [name, entry] of Object.entries(LOSSES)) {
  for (const mode of entry.modes) {
    test(`${name} (${mode}) honours ignoreIndex`, () => {
      const channels = mode === 'binary' ? 1 : 3;
      const b = batch(channels, name.length * 7 + channels);
      const loss = buildLoss([{ name }], channels, IGNORE);
      const valueAndGrad = (values: Float32Array) => {
        const x = tf.tensor4d(values, b.shape);
        const { value, grad } = tf.valueAndGrad((p: tf.Tensor) => loss(p, b.target))(x);
        const out = { value: value.dataSync()[0]!, grad: grad.dataSync() as Float32Array };
        tf.dispose([x, value, grad]);
        return out;
      };
      const a = valueAndGrad(b.logits);
      const c = valueAndGrad(b.changed);
      assert.ok(Number.isFinite(a.value));
      assert.ok(
        Math.abs(a.value - c.value) <= 1e-5 * Math.max(1, Math.abs(a.value)),
        `${a.value} vs ${c.value}`,
      );
      for (let i = 0; i < a.grad.length; i++) {
        const pixel = Math.floor(i / channels);
        if (b.ignored[pixel]) assert.ok(a.grad[i] === 0, `gradient ${a.grad[i]} at ignored pixel ${pixel}`);
        else assert.ok(Math.abs(a.grad[i]! - c.grad[i]!) <= 1e-5, `gradient at pixel ${pixel} moved`);
      }
      b.target.dispose();
    });
  }
}

test('soft-bce: smp smoothFactor s maps 1 → 1-s and 0 → s; labelSmoothing ε equals smoothFactor ε/2', () => {
  const x = tf.tensor4d([0.3, -1.2, 2.0, 0.0], [1, 2, 2, 1]);
  const t = tf.tensor4d([1, 0, 1, 0], [1, 2, 2, 1]);
  const s = 0.1;
  const smp = softBCEWithLogitsLoss({ smoothFactor: s })(x, t).dataSync()[0]!;
  // The same loss computed by hand with soft targets 0.9 / 0.1.
  const logits = [0.3, -1.2, 2.0, 0.0];
  const soft = [1 - s, s, 1 - s, s];
  const sig = (z: number) => 1 / (1 + Math.exp(-z));
  const byHand =
    logits.reduce(
      (acc, z, i) => acc - soft[i]! * Math.log(sig(z)) - (1 - soft[i]!) * Math.log(1 - sig(z)),
      0,
    ) / 4;
  assert.ok(Math.abs(smp - byHand) < 1e-6, `${smp} vs ${byHand}`);
  const keras = softBCEWithLogitsLoss({ labelSmoothing: 2 * s })(x, t).dataSync()[0]!;
  assert.ok(Math.abs(keras - smp) < 1e-7);
  assert.throws(() => softBCEWithLogitsLoss({ labelSmoothing: 0.1, smoothFactor: 0.1 }), /not both/);
  tf.dispose([x, t]);
});

test("README's loss table is the registry's", async () => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const block = readme.match(/<!-- losses:start -->\n([\s\S]*?)\n<!-- losses:end -->/);
  assert.ok(block, 'README.md has no <!-- losses:start --> … <!-- losses:end --> block');
  // Compared cell by cell: a Markdown formatter may pad the columns.
  const cells = (table: string) =>
    table
      .trim()
      .split('\n')
      .filter((row) => !/^\|[\s:|-]+\|$/.test(row))
      .map((row) =>
        row
          .split('|')
          .slice(1, -1)
          .map((c) => c.trim()),
      );
  assert.deepEqual(cells(block[1]!), cells(lossTableMarkdown()));
});

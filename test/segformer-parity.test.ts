/**
 * SegFormer forward parity with the PyTorch reference outputs in ../shared/fixtures/segformer: logits and every
 * stage output within 1e-4, and the trainable parameter count equal to PyTorch's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import { readNpy } from '../src/io/npy.ts';
import { readSafetensors } from '../src/io/safetensors-file.ts';
import { loadSegformer, readSegformerConfig, segformerPreset } from '../src/models/segformer/index.ts';
import { fixture, listFixtures, needs } from './fixtures.ts';

const FOLDERS = listFixtures('segformer');
const TINY = FOLDERS.filter((f) => f.includes('tiny'));
const TOLERANCE = 1e-4;

async function nchwToNhwc(path: string): Promise<tf.Tensor4D> {
  const a = await readNpy(path);
  assert.equal(a.dtype, 'float32', `${path} is float32`);
  return tf.tidy(() => tf.transpose(tf.tensor4d(a.data as Float32Array, a.shape as never), [0, 2, 3, 1]));
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** PyTorch's parameter count: every float tensor of the checkpoint except BatchNorm buffers. */
async function referenceParameterCount(folder: string): Promise<number> {
  const file = await readSafetensors(fixture('segformer', folder, 'model.safetensors'));
  let total = 0;
  for (const [key, t] of file.tensors) {
    if (/running_(mean|var)$|num_batches_tracked$/.test(key)) continue;
    total += t.shape.reduce((a, b) => a * b, 1);
  }
  return total;
}

async function checkFolder(folder: string): Promise<void> {
  const dir = fixture('segformer', folder);
  const { model, report } = await loadSegformer(dir);
  try {
    assert.equal(report.missing.length + report.unexpected.length + report.mismatched.length, 0);
    const x = await nchwToNhwc(fixture('segformer', folder, 'pixel_values.npy'));
    const out = model.forward(x, { outputHiddenStates: true });
    const [n, h, w] = x.shape;
    assert.deepEqual(out.logits.shape.slice(0, 3), [n, Math.ceil(h / 4), Math.ceil(w / 4)]);
    const expected = await nchwToNhwc(fixture('segformer', folder, 'logits.npy'));
    const d = maxAbsDiff(out.logits, expected);
    assert.ok(d <= TOLERANCE, `${folder} logits max |diff| ${d}`);
    // The layer-by-layer decode head (used in training) gives the same logits as the folded eval one.
    const unfolded = model.forward(x, { unfoldedDecoder: true }).logits;
    const du = maxAbsDiff(unfolded, expected);
    assert.ok(du <= TOLERANCE, `${folder} unfolded-decoder logits max |diff| ${du}`);
    unfolded.dispose();
    assert.equal(out.hiddenStates?.length, 4);
    for (let i = 0; i < 4; i++) {
      const ref = await nchwToNhwc(fixture('segformer', folder, `stage${i + 1}.npy`));
      const ds = maxAbsDiff(out.hiddenStates![i], ref);
      assert.ok(ds <= TOLERANCE, `${folder} stage${i + 1} max |diff| ${ds}`);
      ref.dispose();
    }
    tf.dispose([x, expected, out.logits, ...out.hiddenStates!]);
    assert.equal(model.numParameters(), await referenceParameterCount(folder));
  } finally {
    model.dispose();
  }
}

describe('SegFormer forward parity (wasm)', () => {
  it('initialises the wasm backend', async () => {
    assert.equal(await ready('wasm'), 'wasm');
  });
  for (const folder of FOLDERS) {
    it(`${folder}: logits and stage outputs within ${TOLERANCE} of PyTorch`, {
      skip: needs(['segformer', folder]),
    }, async () => {
      await ready('wasm');
      await checkFolder(folder);
    });
  }
  it('segformer-b0 has the 3,715,429 parameters of the PyTorch model', {
    skip: needs(['segformer', 'segformer-b0']),
  }, async () => {
    await ready('wasm');
    const { model } = await loadSegformer(fixture('segformer', 'segformer-b0'));
    assert.equal(model.numParameters(), 3_715_429);
    model.dispose();
  });
  it('the b0 preset with the fixture labels reproduces the fixture config', {
    skip: needs(['segformer', 'segformer-b0']),
  }, async () => {
    const ref = await readSegformerConfig(fixture('segformer', 'segformer-b0', 'config.json'));
    const preset = segformerPreset('b0', { id2label: ref.id2label });
    assert.deepEqual(preset, ref);
  });
});

describe('SegFormer forward parity (cpu)', () => {
  for (const folder of TINY) {
    it(`${folder}: logits and stage outputs within ${TOLERANCE} of PyTorch`, async () => {
      await ready('cpu');
      await checkFolder(folder);
    });
  }
});

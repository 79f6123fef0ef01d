/**
 * The ONNX export and the TF.js SegFormer (src/models/segformer) compute the same function: on random inputs at
 * odd sizes neither fixture covers, their logits agree within 1e-4.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import { loadSegformer } from '../src/models/segformer/index.ts';
import { exportSegformerOnnx, OnnxSegmenter } from '../src/onnx/index.ts';
import { fixture, needs } from './fixtures.ts';

const work = mkdtempSync(join(tmpdir(), 'slideseg-onnx-tfjs-'));
after(() => rmSync(work, { recursive: true, force: true }));
before(async () => {
  await ready();
});

/** Deterministic values in the range ImageNet-normalised pixels take. */
function randomPixels(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let state = seed >>> 0;
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state / 2 ** 32) * 4.4 - 2.1;
  }
  return out;
}

async function compare(folder: string, dims: [number, number, number, number], seed: number) {
  const onnxPath = join(work, `${folder}.onnx`);
  await exportSegformerOnnx(fixture('segformer', folder), onnxPath);
  const pixels = randomPixels(
    dims.reduce((a, b) => a * b, 1),
    seed,
  );
  const seg = await OnnxSegmenter.load(onnxPath, { device: 'cpu' });
  const onnxOut = await seg.run(pixels, dims);
  await seg.release();

  const { model } = await loadSegformer(fixture('segformer', folder));
  const tfjsNchw = tf.tidy(() => {
    const nhwc = tf.transpose(tf.tensor4d(pixels, dims), [0, 2, 3, 1]) as tf.Tensor4D;
    return tf.transpose(model.forward(nhwc).logits, [0, 3, 1, 2]);
  });
  const tfjs = (await tfjsNchw.data()) as Float32Array;
  const tfjsDims = tfjsNchw.shape;
  tfjsNchw.dispose();
  model.dispose();

  const [n, , h, w] = dims;
  assert.deepEqual(onnxOut.dims, [n, onnxOut.dims[1], Math.ceil(h / 4), Math.ceil(w / 4)]);
  assert.deepEqual(onnxOut.dims, tfjsDims);
  let maxAbs = 0;
  for (let i = 0; i < tfjs.length; i++) maxAbs = Math.max(maxAbs, Math.abs(tfjs[i]! - onnxOut.data[i]!));
  assert.ok(maxAbs <= 1e-4, `${folder} at [${dims}]: max |ONNX - TF.js| = ${maxAbs}`);
}

describe('ONNX export vs TF.js model', () => {
  test('segformer-b0, batch 2 at 77×101', { skip: needs(['segformer', 'segformer-b0']) }, async () => {
    await compare('segformer-b0', [2, 3, 77, 101], 7);
  });
  test('segformer-tiny, batch 1 at 45×130', async () => {
    await compare('segformer-tiny', [1, 3, 45, 130], 11);
  });
});

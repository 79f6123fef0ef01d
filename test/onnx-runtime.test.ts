/** OnnxSegmenter (onnxruntime-node): dynamic batch and size, onnxruntime-web parity, input checks, the CLI. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { command as exportCommand } from '../src/cli/commands/export.ts';
import { readNpy } from '../src/io/npy.ts';
import { exportSegformerOnnx, OnnxSegmenter } from '../src/onnx/index.ts';
import { fixture } from './fixtures.ts';

const work = mkdtempSync(join(tmpdir(), 'slideseg-onnx-runtime-'));
after(() => rmSync(work, { recursive: true, force: true }));

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Crops NCHW pixels to [n, c, h, w] from the top-left corner. */
function crop(data: Float32Array, dims: number[], h: number, w: number): Float32Array {
  const [n, c, H, W] = dims as [number, number, number, number];
  const out = new Float32Array(n * c * h * w);
  for (let p = 0; p < n * c; p++) {
    for (let y = 0; y < h; y++)
      out.set(data.subarray(p * H * W + y * W, p * H * W + y * W + w), (p * h + y) * w);
  }
  return out;
}

const tinyOnnx = join(work, 'tiny.onnx');
const oddOnnx = join(work, 'tiny-odd.onnx');
let tiny: { pixels: Float32Array; dims: number[]; logits: Float32Array };
let odd: { pixels: Float32Array; dims: number[]; logits: Float32Array };

before(async () => {
  await exportSegformerOnnx(fixture('segformer', 'segformer-tiny'), tinyOnnx);
  await exportSegformerOnnx(fixture('segformer', 'segformer-tiny-odd'), oddOnnx);
  const load = async (folder: string) => {
    const px = await readNpy(fixture('segformer', folder, 'pixel_values.npy'));
    const lg = await readNpy(fixture('segformer', folder, 'logits.npy'));
    return { pixels: px.data as Float32Array, dims: px.shape, logits: lg.data as Float32Array };
  };
  tiny = await load('segformer-tiny');
  odd = await load('segformer-tiny-odd');
});

describe('dynamic batch and size', () => {
  test('one exported model: batch 2 at 64×96 matches PyTorch, each image alone matches its batch row', async () => {
    const seg = await OnnxSegmenter.load(tinyOnnx, { device: 'cpu', intraOpThreads: 2 });
    assert.equal(seg.executionProvider, 'cpu');
    const both = await seg.run(tiny.pixels, tiny.dims);
    assert.deepEqual(both.dims, [2, 3, 16, 24]);
    assert.ok(maxAbsDiff(both.data, tiny.logits) <= 1e-4);
    const per = 3 * 64 * 96;
    const perLogits = 3 * 16 * 24;
    for (let i = 0; i < 2; i++) {
      const one = await seg.run(tiny.pixels.slice(i * per, (i + 1) * per), [1, 3, 64, 96]);
      assert.deepEqual(one.dims, [1, 3, 16, 24]);
      const row = tiny.logits.subarray(i * perLogits, (i + 1) * perLogits);
      assert.ok(maxAbsDiff(one.data, row) <= 1e-4, `image ${i}`);
    }
    await seg.release();
  });

  test('one exported model at 67×93 (golden) and at 64×96, 33×45, 29×29 (logits at ceil(size/4))', async () => {
    const seg = await OnnxSegmenter.load(oddOnnx, { device: 'cpu' });
    const golden = await seg.run(odd.pixels, odd.dims);
    assert.deepEqual(golden.dims, [1, 2, 17, 24]);
    assert.ok(maxAbsDiff(golden.data, odd.logits) <= 1e-4);
    const sizes: [number, number][] = [
      [64, 96],
      [33, 45],
      // The smallest size the stage-1 sequence-reduction conv (kernel 8 at stride 4) accepts, as in PyTorch.
      [29, 29],
    ];
    for (const [h, w] of sizes) {
      const out = await seg.run(crop(tiny.pixels, tiny.dims, h, w), [2, 3, h, w]);
      assert.deepEqual(out.dims, [2, 2, Math.ceil(h / 4), Math.ceil(w / 4)]);
      assert.ok(out.data.every(Number.isFinite), `${h}×${w} logits are finite`);
    }
    await seg.release();
  });
});

describe('onnxruntime-web (wasm) in Node', () => {
  test('runs the exported bytes with the same output as onnxruntime-node', async () => {
    const ort = await import('onnxruntime-web');
    ort.env.wasm.numThreads = 1;
    const session = await ort.InferenceSession.create(readFileSync(tinyOnnx), {
      executionProviders: ['wasm'],
    });
    const result = await session.run({ pixel_values: new ort.Tensor('float32', tiny.pixels, tiny.dims) });
    const web = result.logits!;
    assert.deepEqual(web.dims, [2, 3, 16, 24]);
    assert.ok(maxAbsDiff(web.data as Float32Array, tiny.logits) <= 1e-4, 'web vs PyTorch');
    const seg = await OnnxSegmenter.load(readFileSync(tinyOnnx), { device: 'cpu' });
    const node = await seg.run(tiny.pixels, tiny.dims);
    assert.ok(maxAbsDiff(web.data as Float32Array, node.data) <= 1e-5, 'web vs node');
    await seg.release();
    await session.release();
  });
});

describe('bad input gets a clear error', () => {
  test('missing file, not an ONNX file, wrong length, wrong rank, wrong channels, bad threads', async () => {
    await assert.rejects(OnnxSegmenter.load(join(work, 'none.onnx')), /none\.onnx: not found/);
    const junk = join(work, 'junk.onnx');
    writeFileSync(junk, 'not a model');
    await assert.rejects(OnnxSegmenter.load(junk, { device: 'cpu' }), /junk\.onnx: cannot load ONNX model/);
    await assert.rejects(OnnxSegmenter.load(tinyOnnx, { intraOpThreads: 0 }), /intraOpThreads/);
    const seg = await OnnxSegmenter.load(tinyOnnx, { device: 'cpu' });
    await assert.rejects(
      seg.run(new Float32Array(10), [1, 3, 64, 96]),
      /tiny\.onnx: input has 10 values but \[1,3,64,96\]/,
    );
    await assert.rejects(seg.run(new Float32Array(10), [10]), /input dims must be \[n, c, h, w\]/);
    await assert.rejects(
      seg.run(new Float32Array(4 * 8 * 8), [1, 4, 8, 8]),
      /tiny\.onnx: inference failed for input \[1,4,8,8\]/,
    );
    await assert.rejects(
      seg.run(new Float32Array(3 * 28 * 28), [1, 3, 28, 28]),
      /inference failed for input \[1,3,28,28\]/,
    );
    await seg.release();
  });
});

describe('slideseg export', () => {
  test('writes a model that reproduces the golden logits; bad flags are one-line errors', async () => {
    const out = join(work, 'cli');
    const args = ['--model', fixture('segformer', 'segformer-tiny-odd'), '--out', out, '--fp16'];
    assert.equal(await exportCommand.run(args), 0);
    const seg = await OnnxSegmenter.load(join(out, 'model.onnx'), { device: 'cpu' });
    const logits = await seg.run(odd.pixels, odd.dims);
    assert.ok(maxAbsDiff(logits.data, odd.logits) <= 2e-3);
    await seg.release();
    await assert.rejects(
      exportCommand.run(['--model', join(work, 'missing'), '--out', out]),
      /missing: not a checkpoint folder/,
    );
    await assert.rejects(
      exportCommand.run(['--model', fixture('segformer', 'segformer-tiny')]),
      /--out DIR is required/,
    );
    const badOpset = ['--model', fixture('segformer', 'segformer-tiny'), '--out', out, '--opset', 'x'];
    await assert.rejects(exportCommand.run(badOpset), /--opset: 'x' is not an integer/);
  });
});

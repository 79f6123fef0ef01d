/** ONNX export of SegFormer checked against the PyTorch golden logits of every fixture checkpoint. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readNpy } from '../src/io/npy.ts';
import { floatToHalf } from '../src/io/safetensors.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors-file.ts';
import { toHalfBits } from '../src/onnx/graph-builder.ts';
import { exportSegformerOnnx, OnnxSegmenter, readSegformerCheckpoint } from '../src/onnx/index.ts';
import { fixture, listFixtures, needs } from './fixtures.ts';

const work = mkdtempSync(join(tmpdir(), 'slideseg-onnx-export-'));
after(() => rmSync(work, { recursive: true, force: true }));

const folders = listFixtures('segformer');

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function runFixture(folder: string, modelPath: string) {
  const pixels = await readNpy(fixture('segformer', folder, 'pixel_values.npy'));
  const expected = await readNpy(fixture('segformer', folder, 'logits.npy'));
  const segmenter = await OnnxSegmenter.load(modelPath, { device: 'cpu' });
  const out = await segmenter.run(pixels.data as Float32Array, pixels.shape);
  await segmenter.release();
  assert.deepEqual(out.dims, expected.shape);
  return maxAbsDiff(out.data, expected.data as Float32Array);
}

describe('exportSegformerOnnx matches PyTorch logits', () => {
  // The two tiny checkpoints are vendored; B0 comes with the shared fixtures (its test skips without them).
  assert.ok(
    folders.length >= 3 || needs(['segformer', 'segformer-b0']),
    `expected SegFormer fixture folders, found ${folders}`,
  );
  for (const folder of folders) {
    test(`${folder}: fp32 within 1e-4`, { skip: needs(['segformer', folder]) }, async () => {
      const out = join(work, `${folder}.onnx`);
      const result = await exportSegformerOnnx(fixture('segformer', folder), out);
      assert.equal(result.bytes, statSync(out).size);
      const diff = await runFixture(folder, out);
      assert.ok(diff <= 1e-4, `${folder}: max abs diff ${diff}`);
    });
  }

  // fp16 weights carry ~2^-11 relative rounding; on these checkpoints (|logits| < 1) the stated bound is 2e-3.
  test('segformer-b0: fp16 weights halve the file and stay within 2e-3', {
    skip: needs(['segformer', 'segformer-b0']),
  }, async () => {
    const fp32 = join(work, 'b0-fp32.onnx');
    const fp16 = join(work, 'b0-fp16.onnx');
    await exportSegformerOnnx(fixture('segformer', 'segformer-b0'), fp32);
    const result = await exportSegformerOnnx(fixture('segformer', 'segformer-b0'), fp16, { fp16: true });
    assert.ok(
      result.bytes < 0.52 * statSync(fp32).size,
      `fp16 ${result.bytes} vs fp32 ${statSync(fp32).size} bytes`,
    );
    const diff = await runFixture('segformer-b0', fp16);
    assert.ok(diff <= 2e-3, `fp16 max abs diff ${diff}`);
  });

  test('segformer-b0: folded decoder (fewer parameters, same logits) within 1e-4', {
    skip: needs(['segformer', 'segformer-b0']),
  }, async () => {
    const out = join(work, 'b0-folded.onnx');
    const result = await exportSegformerOnnx(fixture('segformer', 'segformer-b0'), out, {
      foldDecoder: true,
    });
    // Gone: the (4·256 → 256) fuse weight and the four projection biases (the faithful graph has 3,715,173).
    assert.equal(result.parameters, 3_715_173 - 4 * 256 * 256 - 4 * 256);
    const diff = await runFixture('segformer-b0', out);
    assert.ok(diff <= 1e-4, `folded: max abs diff ${diff}`);
  });

  test('segformer-tiny-odd: opset 20 (Gelu op) within 1e-4', async () => {
    const out = join(work, 'odd-opset20.onnx');
    const result = await exportSegformerOnnx(fixture('segformer', 'segformer-tiny-odd'), out, { opset: 20 });
    assert.equal(result.opset, 20);
    const diff = await runFixture('segformer-tiny-odd', out);
    assert.ok(diff <= 1e-4, `max abs diff ${diff}`);
  });
});

describe('checkpoint sources', () => {
  test('a sharded checkpoint (model.safetensors.index.json) exports the same model', async () => {
    const sharded = join(work, 'sharded');
    await mkdir(sharded, { recursive: true });
    await copyFile(fixture('segformer', 'segformer-tiny', 'config.json'), join(sharded, 'config.json'));
    const { tensors } = await readSafetensors(fixture('segformer', 'segformer-tiny', 'model.safetensors'));
    const entries = [...tensors];
    const half = Math.floor(entries.length / 2);
    const shards = {
      'model-00001-of-00002.safetensors': entries.slice(0, half),
      'model-00002-of-00002.safetensors': entries.slice(half),
    };
    const weightMap: Record<string, string> = {};
    for (const [file, part] of Object.entries(shards)) {
      await writeSafetensors(join(sharded, file), part);
      for (const [key] of part) weightMap[key] = file;
    }
    writeFileSync(
      join(sharded, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    const out = join(work, 'sharded.onnx');
    await exportSegformerOnnx(sharded, out);
    const diff = await runFixture('segformer-tiny', out);
    assert.ok(diff <= 1e-4, `sharded: max abs diff ${diff}`);
  });

  test('an in-memory { config, weights } checkpoint exports the same bytes as its folder', async () => {
    const fromDir = join(work, 'from-dir.onnx');
    const fromMemory = join(work, 'from-memory.onnx');
    await exportSegformerOnnx(fixture('segformer', 'segformer-tiny-odd'), fromDir);
    const checkpoint = await readSegformerCheckpoint(fixture('segformer', 'segformer-tiny-odd'));
    await exportSegformerOnnx(checkpoint, fromMemory);
    assert.deepEqual(readFileSync(fromMemory), readFileSync(fromDir));
  });
});

describe('toHalfBits', () => {
  test('agrees with io/safetensors floatToHalf, including rounding ties, subnormals and overflow', () => {
    const special = [
      0,
      -0,
      1,
      -1,
      65504,
      65520,
      1e6,
      -1e6,
      6.1e-5,
      5.96e-8,
      2.98e-8,
      1e-10,
      1 + 2 ** -11,
      1 + 3 * 2 ** -11,
    ];
    const random = Array.from({ length: 5000 }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 12) - 8));
    const values = Float32Array.from([...special, ...random, Number.NaN, Number.POSITIVE_INFINITY]);
    const bits = toHalfBits(values);
    for (const [i, v] of values.entries()) assert.equal(bits[i], floatToHalf(v), `value ${v}`);
  });
});

describe('export errors name the file and the problem', () => {
  test('missing folder, missing tensor, bad config, bad opset', async () => {
    await assert.rejects(
      exportSegformerOnnx(join(work, 'nope'), join(work, 'x.onnx')),
      /nope.*config\.json: not found/,
    );
    const broken = join(work, 'broken');
    await mkdir(broken, { recursive: true });
    await copyFile(fixture('segformer', 'segformer-tiny', 'config.json'), join(broken, 'config.json'));
    await assert.rejects(exportSegformerOnnx(broken, join(work, 'x.onnx')), /broken: no model\.safetensors/);
    const checkpoint = (depths: number[]) => ({
      config: {
        model_type: 'segformer',
        hidden_sizes: [8, 16, 24, 32],
        depths,
        num_attention_heads: [1, 2, 3, 4],
        decoder_hidden_size: 16,
        num_labels: 3,
      },
      weights: new Map(),
    });
    await assert.rejects(
      exportSegformerOnnx(checkpoint([1, 1]), join(work, 'x.onnx')),
      /'depths' must be a list of 4/,
    );
    await assert.rejects(
      exportSegformerOnnx(checkpoint([1, 1, 2, 1]), join(work, 'x.onnx')),
      /missing tensor 'segformer\.encoder\.patch_embeddings\.0\.proj\.weight'/,
    );
    await assert.rejects(
      exportSegformerOnnx(fixture('segformer', 'segformer-tiny'), join(work, 'x.onnx'), { opset: 13 }),
      /opset 13/,
    );
    writeFileSync(join(broken, 'config.json'), '{"model_type": "vit"}');
    await assert.rejects(
      exportSegformerOnnx(broken, join(work, 'x.onnx')),
      /config\.json: model_type is 'vit'/,
    );
  });
});

/**
 * SegFormer checkpoint folders: bit-identical save/load round trips in the Hugging Face layout, clear errors for
 * bad checkpoints, partial loading, encoder-only (MiT) and sharded checkpoints, preprocessor config.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import { readNpy } from '../src/io/npy.ts';
import type { SafeTensor } from '../src/io/safetensors.ts';
import { serializeSafetensors } from '../src/io/safetensors.ts';
import { readSafetensors } from '../src/io/safetensors-file.ts';
import {
  loadPreprocessorConfig,
  loadSegformer,
  Segformer,
  saveSegformer,
  segformerPreset,
} from '../src/models/segformer/index.ts';
import { fixture, needs } from './fixtures.ts';

const B0 = fixture('segformer', 'segformer-b0');
const TINY = fixture('segformer', 'segformer-tiny');
let work: string;

before(async () => {
  await ready('wasm');
  work = await mkdtemp(join(tmpdir(), 'segformer-ckpt-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

let counter = 0;
/** A fresh folder with the given config object and tensors. */
async function makeFolder(config: object, tensors: Iterable<[string, SafeTensor]>): Promise<string> {
  const dir = join(work, `case-${counter++}`);
  await import('node:fs/promises').then((fs) => fs.mkdir(dir));
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  await writeFile(join(dir, 'model.safetensors'), serializeSafetensors(tensors));
  return dir;
}

async function fixtureConfig(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
}

async function fixtureTensors(dir: string): Promise<Map<string, SafeTensor>> {
  return (await readSafetensors(join(dir, 'model.safetensors'))).tensors;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a).equals(Buffer.from(b));
}

/** Weights of two models as raw float bytes, key by key. */
function assertSameWeights(a: Segformer, b: Segformer, keys?: (k: string) => boolean): void {
  const wa = a.namedWeights();
  const wb = b.namedWeights();
  for (const [key, va] of wa) {
    if (keys && !keys(key)) continue;
    const vb = wb.get(key);
    assert.ok(vb, `${key} present`);
    assert.deepEqual(vb.shape, va.shape, key);
    const da = va.dataSync();
    const db = vb.dataSync();
    assert.ok(
      sameBytes(
        new Uint8Array(da.buffer, da.byteOffset, da.byteLength),
        new Uint8Array(db.buffer, db.byteOffset, db.byteLength),
      ),
      `${key} bit-identical`,
    );
  }
}

describe('SegFormer save/load', () => {
  it('saves the b0 fixture back bit-identically, with the same keys, shapes, dtypes and config', {
    skip: needs(['segformer', 'segformer-b0']),
  }, async () => {
    const { model } = await loadSegformer(B0);
    const out = join(work, 'b0-saved');
    await saveSegformer(model, out);
    const original = await fixtureTensors(B0);
    const saved = await fixtureTensors(out);
    assert.deepEqual([...saved.keys()].sort(), [...original.keys()].sort());
    for (const [key, t] of original) {
      const s = saved.get(key)!;
      assert.equal(s.dtype, t.dtype, `${key} dtype`);
      assert.deepEqual(s.shape, t.shape, `${key} shape`);
      assert.ok(sameBytes(s.bytes, t.bytes), `${key} bytes`);
    }
    assert.deepEqual(await fixtureConfig(out), await fixtureConfig(B0));
    assert.deepEqual(await loadPreprocessorConfig(out), await loadPreprocessorConfig(B0));
    const { model: again, report } = await loadSegformer(out);
    assert.equal(report.loaded.length, original.size);
    assertSameWeights(model, again);
    model.dispose();
    again.dispose();
  });

  it('keeps unknown config fields and writes a given preprocessor config', async () => {
    const config: Record<string, unknown> = {
      ...(await fixtureConfig(TINY)),
      my_custom_field: { nested: [1, 2] },
      torch_dtype: 'float32',
    };
    const dir = await makeFolder(config, await fixtureTensors(TINY));
    const { model } = await loadSegformer(dir);
    const out = join(work, 'tiny-custom');
    await saveSegformer(model, out, { preprocessor: { do_resize: false, image_mean: [0.5, 0.5, 0.5] } });
    const saved = await fixtureConfig(out);
    assert.deepEqual(saved.my_custom_field, { nested: [1, 2] });
    assert.equal(saved.torch_dtype, 'float32');
    assert.deepEqual(saved.id2label, config.id2label);
    const pre = await loadPreprocessorConfig(out);
    assert.equal(pre.do_resize, false);
    assert.deepEqual(pre.image_mean, [0.5, 0.5, 0.5]);
    assert.deepEqual(pre.image_std, [0.229, 0.224, 0.225]);
    model.dispose();
  });

  it('round-trips a freshly initialised preset model bit-identically', async () => {
    const model = new Segformer(segformerPreset('b0', { numLabels: 3 }), { seed: 7 });
    const out = join(work, 'fresh-b0');
    await saveSegformer(model, out);
    const { model: again } = await loadSegformer(out);
    assertSameWeights(model, again);
    assert.deepEqual(again.config, model.config);
    model.dispose();
    again.dispose();
  });

  it('reads the fixture preprocessor config', { skip: needs(['segformer', 'segformer-b0']) }, async () => {
    const pre = await loadPreprocessorConfig(B0);
    assert.equal(pre.do_resize, false);
    assert.equal(pre.do_rescale, true);
    assert.ok(Math.abs(pre.rescale_factor - 1 / 255) < 1e-12);
    assert.equal(pre.do_normalize, true);
    assert.equal(pre.image_mean.length, 3);
    assert.ok(Math.abs(pre.image_std[0] - 0.229) < 1e-6);
  });
});

describe('SegFormer checkpoint errors', () => {
  it('names missing, unexpected and mis-shaped keys', async () => {
    const tensors = new Map(await fixtureTensors(TINY));
    const config = await fixtureConfig(TINY);
    const missingDir = await makeFolder(
      config,
      [...tensors].filter(([k]) => k !== 'segformer.encoder.block.2.1.mlp.dense1.weight'),
    );
    await assert.rejects(
      loadSegformer(missingDir),
      /missing key.*segformer\.encoder\.block\.2\.1\.mlp\.dense1\.weight/,
    );

    const unexpectedDir = await makeFolder(config, [
      ...tensors,
      ['decode_head.extra.weight', { dtype: 'F32', shape: [2], bytes: new Uint8Array(8) }],
    ]);
    await assert.rejects(loadSegformer(unexpectedDir), /unexpected key.*decode_head\.extra\.weight/);

    const fuse = tensors.get('decode_head.linear_fuse.weight')!;
    const misShapedDir = await makeFolder(config, [
      ...[...tensors].filter(([k]) => k !== 'decode_head.linear_fuse.weight'),
      ['decode_head.linear_fuse.weight', { ...fuse, shape: [fuse.shape[1], fuse.shape[0], 1, 1] }],
    ]);
    await assert.rejects(
      loadSegformer(misShapedDir),
      (e: Error) =>
        /mis-shaped key.*decode_head\.linear_fuse\.weight \(file F32\[64,16,1,1\], model needs F32\[16,64,1,1\]\)/.test(
          e.message,
        ) && e.message.includes(join(misShapedDir, 'model.safetensors')),
    );
  });

  it('with allowPartial, loads what fits and reports the rest', async () => {
    const tensors = new Map(await fixtureTensors(TINY));
    const fuse = tensors.get('decode_head.linear_fuse.weight')!;
    const dir = await makeFolder(await fixtureConfig(TINY), [
      ...[...tensors].filter(
        ([k]) => k !== 'decode_head.linear_fuse.weight' && k !== 'segformer.encoder.layer_norm.3.bias',
      ),
      ['decode_head.linear_fuse.weight', { ...fuse, shape: [fuse.shape[1], fuse.shape[0], 1, 1] }],
      ['something.else', { dtype: 'F32', shape: [1], bytes: new Uint8Array(4) }],
    ]);
    const { model, report } = await loadSegformer(dir, { allowPartial: true, seed: 3 });
    assert.deepEqual(report.missing, ['segformer.encoder.layer_norm.3.bias']);
    assert.deepEqual(report.unexpected, ['something.else']);
    assert.deepEqual(
      report.mismatched.map((m) => m.key),
      ['decode_head.linear_fuse.weight'],
    );
    assert.deepEqual(report.freshlyInitialised.sort(), [
      'decode_head.linear_fuse.weight',
      'segformer.encoder.layer_norm.3.bias',
    ]);
    const { model: full } = await loadSegformer(TINY);
    assertSameWeights(model, full, (k) => !report.freshlyInitialised.includes(k));
    // The fresh LayerNorm bias is zero, as HF's _init_weights makes it.
    assert.equal(model.namedWeights().get('segformer.encoder.layer_norm.3.bias')!.sum().dataSync()[0], 0);
    model.dispose();
    full.dispose();
  });

  it('rejects corrupt safetensors with an error naming the file', async () => {
    const config = await fixtureConfig(TINY);
    const good = await readFile(join(TINY, 'model.safetensors'));

    const badHeader = join(work, 'bad-header');
    await import('node:fs/promises').then((fs) => fs.mkdir(badHeader));
    await writeFile(join(badHeader, 'config.json'), JSON.stringify(config));
    const broken = Buffer.from(good);
    broken.writeBigUInt64LE(BigInt(good.byteLength * 10), 0);
    await writeFile(join(badHeader, 'model.safetensors'), broken);
    await assert.rejects(
      loadSegformer(badHeader),
      (e: Error) =>
        e.message.includes(join(badHeader, 'model.safetensors')) && /header length/.test(e.message),
    );

    const notJson = Buffer.from(good);
    notJson.write('}}}}', 8);
    await writeFile(join(badHeader, 'model.safetensors'), notJson);
    await assert.rejects(
      loadSegformer(badHeader),
      (e: Error) =>
        e.message.includes(join(badHeader, 'model.safetensors')) && /not valid JSON/.test(e.message),
    );

    const truncated = join(work, 'truncated');
    await import('node:fs/promises').then((fs) => fs.mkdir(truncated));
    await writeFile(join(truncated, 'config.json'), JSON.stringify(config));
    await writeFile(join(truncated, 'model.safetensors'), good.subarray(0, good.byteLength - 100));
    await assert.rejects(
      loadSegformer(truncated),
      (e: Error) =>
        e.message.includes(join(truncated, 'model.safetensors')) && /past the end/.test(e.message),
    );
  });

  it('names the folder when weights or config are absent or the config is invalid', async () => {
    const empty = join(work, 'empty');
    await import('node:fs/promises').then((fs) => fs.mkdir(empty));
    await assert.rejects(loadSegformer(empty), (e: Error) => e.message.includes(join(empty, 'config.json')));
    await copyFile(join(TINY, 'config.json'), join(empty, 'config.json'));
    await assert.rejects(
      loadSegformer(empty),
      (e: Error) => e.message.includes(empty) && /model\.safetensors/.test(e.message),
    );
    const badConfig = await makeFolder({ ...(await fixtureConfig(TINY)), hidden_sizes: [8, 16] }, []);
    await assert.rejects(loadSegformer(badConfig), /config\.json: invalid SegFormer config: hidden_sizes/);
  });
});

describe('SegFormer encoder-only and sharded checkpoints', () => {
  it('an encoder-only (MiT image-classification) checkpoint initialises the encoder and reports a fresh decoder', {
    skip: needs(['segformer', 'segformer-b0']),
  }, async () => {
    const tensors = await fixtureTensors(B0);
    const id2label = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [String(i), `imagenet_${i}`]));
    const config = {
      ...(await fixtureConfig(B0)),
      architectures: ['SegformerForImageClassification'],
      id2label,
      label2id: Object.fromEntries(Object.entries(id2label).map(([k, v]) => [v, Number(k)])),
    };
    const classifierW = new Float32Array(10 * 256).fill(0.5);
    const dir = await makeFolder(config, [
      ...[...tensors].filter(([k]) => k.startsWith('segformer.encoder.')),
      ['classifier.weight', { dtype: 'F32', shape: [10, 256], bytes: new Uint8Array(classifierW.buffer) }],
      ['classifier.bias', { dtype: 'F32', shape: [10], bytes: new Uint8Array(40) }],
    ]);
    const { model, report } = await loadSegformer(dir, { numLabels: 5, seed: 11 });
    assert.equal(report.encoderOnly, true);
    assert.deepEqual(report.ignored.sort(), ['classifier.bias', 'classifier.weight']);
    assert.deepEqual(report.missing, []);
    assert.deepEqual(report.unexpected, []);
    const decoderKeys = [...tensors.keys()].filter((k) => k.startsWith('decode_head.')).sort();
    assert.deepEqual(report.freshlyInitialised.sort(), decoderKeys);
    assert.deepEqual(report.labelsChanged, { from: 10, to: 5 });
    assert.deepEqual(model.config.architectures, ['SegformerForSemanticSegmentation']);
    assert.equal(Object.keys(model.config.id2label).length, 5);

    // The encoder is the fixture's: its stage outputs match the PyTorch reference.
    const pv = await readNpy(join(B0, 'pixel_values.npy'));
    const x = tf.transpose(
      tf.tensor4d(pv.data as Float32Array, pv.shape as never),
      [0, 2, 3, 1],
    ) as tf.Tensor4D;
    const out = model.forward(x, { outputHiddenStates: true });
    const ref = await readNpy(join(B0, 'stage4.npy'));
    const refT = tf.transpose(tf.tensor4d(ref.data as Float32Array, ref.shape as never), [0, 2, 3, 1]);
    assert.ok(tf.max(tf.abs(tf.sub(out.hiddenStates![3], refT))).dataSync()[0] < 1e-4);
    assert.deepEqual(out.logits.shape, [1, 32, 40, 5]);
    // The decoder is fresh: BatchNorm statistics at their PyTorch defaults.
    const w = model.namedWeights();
    assert.deepEqual([...w.get('decode_head.batch_norm.running_var')!.dataSync()].slice(0, 3), [1, 1, 1]);
    assert.equal(w.get('decode_head.batch_norm.num_batches_tracked')!.dataSync()[0], 0);
    tf.dispose([x, refT, out.logits, ...out.hiddenStates!]);
    model.dispose();
  });

  it('a sharded checkpoint (two shards + index) loads identically to the single file', {
    skip: needs(['segformer', 'segformer-b0']),
  }, async () => {
    const tensors = [...(await fixtureTensors(B0))];
    const half = Math.floor(tensors.length / 2);
    const dir = join(work, 'sharded');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    await copyFile(join(B0, 'config.json'), join(dir, 'config.json'));
    const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    await writeFile(join(dir, names[0]), serializeSafetensors(tensors.slice(0, half)));
    await writeFile(join(dir, names[1]), serializeSafetensors(tensors.slice(half)));
    const weightMap = Object.fromEntries(tensors.map(([k], i) => [k, names[i < half ? 0 : 1]]));
    await writeFile(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
    );
    const { model: sharded, report } = await loadSegformer(dir);
    assert.equal(report.files.length, 2);
    const { model: single } = await loadSegformer(B0);
    assertSameWeights(sharded, single);
    assert.equal(sharded.numParameters(), single.numParameters());
    sharded.dispose();
    single.dispose();

    // An index pointing at a shard that is not there is named in the error.
    await writeFile(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({
        weight_map: { ...weightMap, 'decode_head.classifier.bias': 'model-00003-of-00002.safetensors' },
      }),
    );
    await assert.rejects(loadSegformer(dir), /model-00003-of-00002\.safetensors/);
  });
});

describe('SegFormer fresh initialisation', () => {
  it('follows HF _init_weights (normal 0.02 for linear/conv, LayerNorm 1/0) and is reproducible by seed', () => {
    const config = segformerPreset('b0', { numLabels: 4 });
    const a = new Segformer(config, { seed: 5 });
    const b = new Segformer(config, { seed: 5 });
    const c = new Segformer(config, { seed: 6 });
    assertSameWeights(a, b);
    const w = a.namedWeights();
    const fuse = w.get('decode_head.linear_fuse.weight')!;
    const { mean, variance } = tf.moments(fuse);
    assert.ok(Math.abs(mean.dataSync()[0]) < 1e-3);
    assert.ok(Math.abs(Math.sqrt(variance.dataSync()[0]) - 0.02) < 1e-3);
    assert.deepEqual([...w.get('segformer.encoder.layer_norm.0.weight')!.dataSync()], new Array(32).fill(1));
    assert.deepEqual(
      [...w.get('segformer.encoder.block.0.0.mlp.dense1.bias')!.dataSync()],
      new Array(128).fill(0),
    );
    const qa = w.get('segformer.encoder.block.0.0.attention.self.query.weight')!.dataSync();
    const qc = c.namedWeights().get('segformer.encoder.block.0.0.attention.self.query.weight')!.dataSync();
    assert.notDeepEqual([...qa], [...qc]);
    assert.equal(a.numParameters(), 3_715_172); // 3,715,429 minus the 257 parameters of one classifier row
    assert.equal(a.trainableVariables().length, a.encoderVariables().length + a.decoderVariables().length);
    for (const m of [a, b, c]) m.dispose();
  });

  it("'nvlabs' initialisation uses fan_out normal for encoder convs and keeps HF's decoder init", () => {
    const model = new Segformer(segformerPreset('b0', { numLabels: 2 }), { seed: 2, init: 'nvlabs' });
    const w = model.namedWeights();
    const std = (key: string) => Math.sqrt(tf.moments(w.get(key)!).variance.dataSync()[0]);
    // patch embedding 0: 32 out channels, 7×7 → √(2 / 1568); depthwise 3×3 (groups = channels) → √(2 / 9).
    assert.ok(
      Math.abs(std('segformer.encoder.patch_embeddings.0.proj.weight') / Math.sqrt(2 / 1568) - 1) < 0.05,
    );
    assert.ok(
      Math.abs(std('segformer.encoder.block.1.0.mlp.dwconv.dwconv.weight') / Math.sqrt(2 / 9) - 1) < 0.05,
    );
    assert.ok(Math.abs(std('segformer.encoder.block.3.1.mlp.dense1.weight') / 0.02 - 1) < 0.05);
    assert.ok(Math.abs(std('decode_head.linear_fuse.weight') / 0.02 - 1) < 0.05);
    model.dispose();
  });
});

describe('SegFormer config', () => {
  it('presets carry the official MiT sizes and label maps as PretrainedConfig makes them', () => {
    const b2 = segformerPreset('b2', { numLabels: 3 });
    assert.deepEqual(b2.hidden_sizes, [64, 128, 320, 512]);
    assert.deepEqual(b2.depths, [3, 4, 6, 3]);
    assert.equal(b2.decoder_hidden_size, 768);
    assert.deepEqual(b2.id2label, { 0: 'LABEL_0', 1: 'LABEL_1', 2: 'LABEL_2' });
    assert.deepEqual(b2.label2id, { LABEL_0: 0, LABEL_1: 1, LABEL_2: 2 });
    assert.equal('num_labels' in b2, false);
    assert.deepEqual(segformerPreset('b5').depths, [3, 6, 40, 3]);
    assert.throws(() => segformerPreset('b0', { numLabels: 3, id2label: { 0: 'a' } }), /disagrees/);
    assert.throws(() => segformerPreset('b9' as 'b0'), /unknown SegFormer preset 'b9'/);
    // B0 with the 150 ADE20K classes has the 3,752,694 parameters of nvidia/segformer-b0-finetuned-ade-512-512.
    const ade = new Segformer(segformerPreset('b0', { numLabels: 150 }), { seed: 0 });
    assert.equal(ade.numParameters(), 3_715_429 + (150 - 5) * 257);
    ade.dispose();
  });
});

describe('SegFormer input checks', () => {
  it('rejects inputs with the wrong layout, dtype or a size too small for the reduction convs', () => {
    const model = new Segformer(segformerPreset('b0', { numLabels: 2 }), { seed: 1 });
    assert.throws(() => model.forward(tf.zeros([1, 3, 64, 64]) as tf.Tensor4D), /NHWC with 3 channels/);
    assert.throws(() => model.forward(tf.zeros([1, 64, 64, 3], 'int32') as tf.Tensor4D), /float32/);
    // 16×16 → stage 1 is 4×4, smaller than its 8×8 sequence-reduction conv (PyTorch fails here too).
    assert.throws(
      () => model.forward(tf.zeros([1, 16, 16, 3]) as tf.Tensor4D),
      /too small: stage 1 would be 4×4/,
    );
    const { logits } = model.forward(tf.zeros([1, 33, 35, 3]) as tf.Tensor4D);
    assert.deepEqual(logits.shape, [1, 9, 9, 2]);
    model.dispose();
    assert.throws(() => model.forward(tf.zeros([1, 64, 64, 3]) as tf.Tensor4D), /disposed/);
  });
});

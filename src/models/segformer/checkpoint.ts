/**
 * Hugging Face checkpoint folders: config.json + model.safetensors (or a sharded
 * model.safetensors.index.json), optionally preprocessor_config.json. Tensors keep HF key names, dtypes and
 * PyTorch layouts in the file, so `from_pretrained` reads what we write and we read what it writes.
 */

import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../core/atomic-write.ts';
import { CheckpointError } from '../../core/errors.ts';
import { tf } from '../../engine/index.ts';
import type { SafeTensor } from '../../io/safetensors.ts';
import { toFloat32 } from '../../io/safetensors.ts';
import { readSafetensors, writeSafetensors } from '../../io/safetensors-file.ts';
import type { SegformerConfig } from './config.ts';
import { normalizeConfig, numLabels, serializeConfig } from './config.ts';
import { readSegformerConfig } from './config-file.ts';
import { segformerKeys as K } from './keys.ts';
import { Segformer } from './model.ts';
import type { ParamSpec } from './params.ts';
import { segformerParamSpecs, tfShape, toFilePerm, toTfPerm } from './params.ts';
import type { PreprocessorConfig } from './preprocessor.ts';
import { loadPreprocessorConfig, PREPROCESSOR_FILE } from './preprocessor.ts';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';

export interface LoadReport {
  /** The weight files read. */
  files: string[];
  /** Keys whose values came from the checkpoint. */
  loaded: string[];
  /** Keys the model needs that the checkpoint lacks (freshly initialised; only with allowPartial). */
  missing: string[];
  /** Checkpoint keys the model has no use for (left out; only with allowPartial). */
  unexpected: string[];
  /** Keys whose shape (or dtype) differs from what the model needs (freshly initialised; only with allowPartial). */
  mismatched: { key: string; expected: string; found: string }[];
  /** True for an encoder-only (MiT / SegformerForImageClassification) checkpoint: the decode head is fresh. */
  encoderOnly: boolean;
  /** Every key that received fresh initial values, for whatever reason. */
  freshlyInitialised: string[];
  /** Checkpoint keys deliberately not used: the image-classification head of encoder-only checkpoints. */
  ignored: string[];
  /** Set when `numLabels` replaced the checkpoint's label set (the classifier is then fresh). */
  labelsChanged?: { from: number; to: number };
}

export interface LoadOptions {
  /** Load what fits and report the rest instead of failing on missing, unexpected or mis-shaped keys. */
  allowPartial?: boolean;
  /** Number of classes wanted; a different count than the checkpoint's gives a fresh classifier. */
  numLabels?: number;
  /** Seed for any freshly initialised tensors. */
  seed?: number;
}

/** The preprocessor config a model was loaded with, so a save can write it back. */
const knownPreprocessor = new WeakMap<Segformer, PreprocessorConfig>();

/**
 * Every tensor of a folder's checkpoint: model.safetensors, or the shards a model.safetensors.index.json lists (the
 * one sharded-weights reader, used by the loader and the ONNX export).
 */
export async function readCheckpointTensors(
  dir: string,
): Promise<{ files: string[]; tensors: Map<string, SafeTensor> }> {
  const single = join(dir, WEIGHTS_FILE);
  const index = join(dir, WEIGHTS_INDEX_FILE);
  const tensors = new Map<string, SafeTensor>();
  if (existsSync(single)) {
    const f = await readSafetensors(single);
    return { files: [single], tensors: f.tensors };
  }
  if (!existsSync(index)) {
    const bin = existsSync(join(dir, 'pytorch_model.bin'))
      ? ' (pytorch_model.bin is not supported: convert it to safetensors)'
      : '';
    throw new CheckpointError(`${dir}: no ${WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE} found${bin}`);
  }
  let weightMap: Record<string, string>;
  try {
    const parsed = JSON.parse(await readFile(index, 'utf8'));
    weightMap = parsed?.weight_map;
    if (weightMap == null || typeof weightMap !== 'object') throw new CheckpointError('no weight_map object');
  } catch (e) {
    throw new CheckpointError(`${index}: invalid shard index (${(e as Error).message})`);
  }
  const shardNames = [...new Set(Object.values(weightMap))];
  const files: string[] = [];
  for (const name of shardNames) {
    if (typeof name !== 'string' || name.includes('/') || name.includes('\\') || name.startsWith('.')) {
      throw new CheckpointError(`${index}: invalid shard file name ${JSON.stringify(name)}`);
    }
    const path = join(dir, name);
    files.push(path);
    const shard = await readSafetensors(path);
    for (const [key, t] of shard.tensors) tensors.set(key, t);
  }
  const absent = Object.entries(weightMap).filter(([key]) => !tensors.has(key));
  if (absent.length > 0) {
    throw new CheckpointError(
      `${index}: ${absent.length} key(s) listed but not in their shard: ${absent
        .slice(0, 5)
        .map(([k, f]) => `${k} (${f})`)
        .join(', ')}`,
    );
  }
  return { files, tensors };
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/** A file tensor converted to TF.js layout, or a reason it cannot be used. */
function convert(spec: ParamSpec, t: SafeTensor): tf.Tensor | string {
  if (!tf.util.arraysEqual(t.shape, spec.fileShape)) {
    return `${t.dtype}[${t.shape.join(',')}]`;
  }
  if (spec.layout === 'count') {
    if (t.dtype !== 'I64' && t.dtype !== 'I32') return `${t.dtype}[${t.shape.join(',')}]`;
    const dv = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
    const n = t.dtype === 'I64' ? Number(dv.getBigInt64(0, true)) : dv.getInt32(0, true);
    return tf.scalar(n, 'int32');
  }
  if (!FLOAT_DTYPES.has(t.dtype)) return `${t.dtype}[${t.shape.join(',')}]`;
  const perm = toTfPerm(spec.layout);
  const raw = tf.tensor(toFloat32(t, spec.key), t.shape, 'float32');
  if (!perm) return raw;
  const out = tf.transpose(raw, perm);
  raw.dispose();
  return out;
}

const describe = (s: ParamSpec) => `F32[${s.fileShape.join(',')}]`;

function listKeys(label: string, keys: string[]): string {
  const shown = keys.slice(0, 12).join(', ');
  return `${keys.length} ${label}: ${shown}${keys.length > 12 ? `, ... (${keys.length - 12} more)` : ''}`;
}

/** Loads a Hugging Face SegFormer folder (config.json + safetensors weights). */
export async function loadSegformer(
  dir: string,
  opts: LoadOptions = {},
): Promise<{ model: Segformer; report: LoadReport }> {
  let config: SegformerConfig = await readSegformerConfig(join(dir, CONFIG_FILE));
  const { files, tensors: fileTensors } = await readCheckpointTensors(dir);
  const report: LoadReport = {
    files,
    loaded: [],
    missing: [],
    unexpected: [],
    mismatched: [],
    encoderOnly: false,
    freshlyInitialised: [],
    ignored: [],
  };

  // A bare SegformerModel checkpoint has no 'segformer.' prefix (HF's base_model_prefix).
  let tensors = fileTensors;
  const keys = [...tensors.keys()];
  if (!keys.some((k) => k.startsWith(K.basePrefix)) && keys.some((k) => k.startsWith('encoder.'))) {
    tensors = new Map(
      keys.map((k) => [k.startsWith('encoder.') ? `${K.basePrefix}${k}` : k, tensors.get(k)!]),
    );
  }
  report.encoderOnly =
    [...tensors.keys()].some((k) => k.startsWith(K.encoderPrefix)) &&
    ![...tensors.keys()].some((k) => k.startsWith(K.decoderPrefix));

  const before = numLabels(config);
  if (opts.numLabels != null && opts.numLabels !== before) {
    config = normalizeConfig(
      { ...config, id2label: undefined, label2id: undefined, num_labels: opts.numLabels },
      dir,
    );
    report.labelsChanged = { from: before, to: opts.numLabels };
  }
  if (report.encoderOnly && config.architectures?.includes('SegformerForImageClassification')) {
    config = { ...config, architectures: ['SegformerForSemanticSegmentation'] };
  }

  const specs = segformerParamSpecs(config);
  const wanted = new Set(specs.map((s) => s.key));
  const values = new Map<string, tf.Tensor>();
  try {
    for (const spec of specs) {
      const t = tensors.get(spec.key);
      if (!t) {
        const expectedFresh =
          (report.encoderOnly && spec.part === 'decoder') || spec.key.endsWith('num_batches_tracked');
        if (expectedFresh) report.freshlyInitialised.push(spec.key);
        else report.missing.push(spec.key);
        continue;
      }
      const converted = convert(spec, t);
      if (typeof converted === 'string') {
        const isClassifier = spec.key.startsWith(`${K.classifier}.`);
        if (isClassifier && report.labelsChanged) report.freshlyInitialised.push(spec.key);
        else report.mismatched.push({ key: spec.key, expected: describe(spec), found: converted });
        continue;
      }
      values.set(spec.key, converted);
      report.loaded.push(spec.key);
    }
    for (const key of tensors.keys()) {
      if (wanted.has(key)) continue;
      if (report.encoderOnly && key.startsWith('classifier.')) report.ignored.push(key);
      else report.unexpected.push(key);
    }
    const problems = [
      report.missing.length > 0 ? listKeys('missing key(s)', report.missing) : '',
      report.unexpected.length > 0 ? listKeys('unexpected key(s)', report.unexpected) : '',
      report.mismatched.length > 0
        ? listKeys(
            'mis-shaped key(s)',
            report.mismatched.map((m) => `${m.key} (file ${m.found}, model needs ${m.expected})`),
          )
        : '',
    ].filter((p) => p.length > 0);
    if (problems.length > 0 && !opts.allowPartial) {
      throw new CheckpointError(
        `${files.join(', ')}: checkpoint does not match the SegFormer config in ${join(dir, CONFIG_FILE)}: ` +
          `${problems.join('; ')} (pass allowPartial to load what fits)`,
      );
    }
    report.freshlyInitialised.push(...report.missing, ...report.mismatched.map((m) => m.key));
    const model = new Segformer(config, { seed: opts.seed, initialValues: values });
    if (existsSync(join(dir, PREPROCESSOR_FILE))) {
      knownPreprocessor.set(model, await loadPreprocessorConfig(dir));
    }
    return { model, report };
  } finally {
    for (const v of values.values()) v.dispose();
  }
}

/** File-layout tensors of a model, in state-dict order. */
export function segformerStateDict(model: Segformer): [string, SafeTensor][] {
  const weights = model.namedWeights();
  return model.paramSpecs().map((spec): [string, SafeTensor] => {
    const v = weights.get(spec.key)!;
    if (spec.layout === 'count') {
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setBigInt64(0, BigInt(v.dataSync()[0]), true);
      return [spec.key, { dtype: 'I64', shape: [], bytes }];
    }
    const perm = toFilePerm(spec.layout);
    const data = perm ? tf.tidy(() => tf.transpose(v, perm).dataSync()) : v.dataSync();
    const f32 = Float32Array.from(data as Float32Array);
    if (!tf.util.arraysEqual(tfShape(spec), v.shape))
      throw new CheckpointError(`${spec.key}: unexpected variable shape`);
    return [spec.key, { dtype: 'F32', shape: [...spec.fileShape], bytes: new Uint8Array(f32.buffer) }];
  });
}

/**
 * Writes config.json, model.safetensors and (when given or known from loading) preprocessor_config.json, each
 * through a temporary file and a rename.
 */
export async function saveSegformer(
  model: Segformer,
  dir: string,
  opts: { preprocessor?: object } = {},
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, WEIGHTS_FILE), segformerStateDict(model), { format: 'pt' });
  await writeFileAtomic(join(dir, CONFIG_FILE), serializeConfig(model.config));
  const pre = opts.preprocessor ?? knownPreprocessor.get(model);
  if (pre) await writeFileAtomic(join(dir, PREPROCESSOR_FILE), `${JSON.stringify(pre, null, 2)}\n`);
}

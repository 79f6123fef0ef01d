/**
 * Frozen image encoders for `eval-encoder`: a SegFormer/MiT folder run on TF.js (global average of the last
 * hidden state, or of every stage concatenated), or any ONNX image encoder on onnxruntime-node (input NCHW
 * float32; output [N, D], or [N, D, h, w] averaged over h and w). Each has a hash of what determines its
 * embeddings, which keys the on-disk cache.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { IMAGENET, type Normalisation, normaliseImage } from '../core/sliding.ts';
import { ready, tf } from '../engine/index.ts';
import {
  defaultPreprocessorConfig,
  loadPreprocessorConfig,
  loadSegformer,
} from '../models/segformer/index.ts';
import type { Segformer } from '../models/segformer/model.ts';
import type { Patch } from './dataset.ts';
import { normalisationOf } from './normalisation.ts';

export type Pooling = 'last' | 'multi';

export interface ImageEncoder {
  /** What it is, for logs and results. */
  describe: string;
  /** sha256 of the weights, config and pooling: equal hashes give equal embeddings. */
  hash: string;
  /** Embeds same-size patches: one Float32Array of length D per patch. */
  embed(patches: Patch[]): Promise<Float32Array[]>;
  dispose(): void;
}

/** Normalised NHWC float32 values of same-size patches. */
function pixelBatch(patches: Patch[], norm: Normalisation): { data: Float32Array; h: number; w: number } {
  const { width: w, height: h } = patches[0]!;
  const data = new Float32Array(patches.length * h * w * 3);
  patches.forEach((p, i) => {
    if (p.width !== w || p.height !== h) throw new Error('encoder: a batch mixes patch sizes');
    const t = normaliseImage(p.data, w, h, norm);
    data.set(t.dataSync() as Float32Array, i * h * w * 3);
    t.dispose();
  });
  return { data, h, w };
}

async function hashFiles(paths: string[], extra: string): Promise<string> {
  const h = createHash('sha256');
  h.update(extra);
  for (const p of paths) {
    h.update(p.split('/').at(-1)!);
    h.update(await readFile(p));
  }
  return h.digest('hex');
}

/** A SegFormer / MiT checkpoint folder as a frozen encoder (decode head unused). */
export async function mitEncoder(dir: string, pooling: Pooling = 'last'): Promise<ImageEncoder> {
  await ready();
  const { model } = await loadSegformer(dir, { allowPartial: true });
  const hasPre = existsSync(join(dir, 'preprocessor_config.json'));
  const norm = normalisationOf(hasPre ? await loadPreprocessorConfig(dir) : defaultPreprocessorConfig());
  const files = (await readdir(dir))
    .filter((f) => f === 'config.json' || f === 'preprocessor_config.json' || f.endsWith('.safetensors'))
    .sort()
    .map((f) => join(dir, f));
  const hash = await hashFiles(files, `mit:${pooling}`);
  return {
    describe: `MiT encoder ${dir} (${pooling === 'last' ? 'pooled last stage' : 'pooled stages concatenated'})`,
    hash,
    async embed(patches) {
      return embedWithSegformer(model, patches, norm, pooling);
    },
    dispose: () => model.dispose(),
  };
}

function embedWithSegformer(model: Segformer, patches: Patch[], norm: Normalisation, pooling: Pooling) {
  const { data, h, w } = pixelBatch(patches, norm);
  const x = tf.tensor4d(data, [patches.length, h, w, 3]);
  const out = model.forward(x, { training: false, outputHiddenStates: true });
  x.dispose();
  const stages = out.hiddenStates!;
  const pooled = tf.tidy(() => {
    const used = pooling === 'last' ? [stages.at(-1)!] : stages;
    return tf.concat(
      used.map((s) => s.mean([1, 2])),
      1,
    );
  });
  tf.dispose([out.logits, ...stages]);
  const D = pooled.shape[1]!;
  const flat = pooled.dataSync() as Float32Array;
  pooled.dispose();
  return patches.map((_, i) => flat.slice(i * D, (i + 1) * D));
}

/** Any ONNX image encoder: first input NCHW float32, first output [N, D] or [N, D, h, w]. */
export async function onnxEncoder(file: string, norm: Normalisation = IMAGENET): Promise<ImageEncoder> {
  if (!existsSync(file) || !statSync(file).isFile()) throw new Error(`${file}: no such ONNX file`);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'] });
  } catch (e) {
    throw new Error(`${file}: cannot load ONNX model (${String((e as Error).message).split('\n')[0]})`);
  }
  const input = session.inputNames[0]!;
  const output = session.outputNames[0]!;
  const hash = await hashFiles([file], `onnx:${JSON.stringify(norm)}`);
  return {
    describe: `ONNX encoder ${file} (${input} → ${output})`,
    hash,
    async embed(patches) {
      const { data, h, w } = pixelBatch(patches, norm);
      const N = patches.length;
      // NHWC → NCHW.
      const nchw = new Float32Array(data.length);
      for (let n = 0; n < N; n++)
        for (let p = 0; p < h * w; p++)
          for (let c = 0; c < 3; c++) nchw[(n * 3 + c) * h * w + p] = data[(n * h * w + p) * 3 + c]!;
      let result: ort.InferenceSession.OnnxValueMapType;
      try {
        result = await session.run({ [input]: new ort.Tensor('float32', nchw, [N, 3, h, w]) });
      } catch (e) {
        throw new Error(
          `${file}: inference failed on [${N},3,${h},${w}] (${String((e as Error).message).split('\n')[0]})`,
        );
      }
      const t = result[output]!;
      const dims = t.dims.map(Number);
      const values = t.data as Float32Array;
      if (t.type !== 'float32' || dims[0] !== N || (dims.length !== 2 && dims.length !== 4))
        throw new Error(
          `${file}: output '${output}' is ${t.type} [${dims}], expected float32 [N, D] or [N, D, h, w]`,
        );
      const D = dims[1]!;
      const spatial = dims.length === 4 ? dims[2]! * dims[3]! : 1;
      return Array.from({ length: N }, (_, n) => {
        const v = new Float32Array(D);
        for (let d = 0; d < D; d++) {
          let s = 0;
          for (let k = 0; k < spatial; k++) s += values[(n * D + d) * spatial + k]!;
          v[d] = s / spatial;
        }
        return v;
      });
    },
    dispose: () => void session.release(),
  };
}

/** An `.onnx` file or a checkpoint folder. */
export async function openEncoder(path: string, pooling: Pooling = 'last'): Promise<ImageEncoder> {
  if (path.toLowerCase().endsWith('.onnx')) return onnxEncoder(path);
  if (!existsSync(join(path, 'config.json')))
    throw new Error(`${path}: not an .onnx file nor a folder with config.json (SegFormer/MiT checkpoint)`);
  return mitEncoder(path, pooling);
}

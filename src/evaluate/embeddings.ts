/**
 * Embeddings computed once and cached: `<cache>/embeddings/<split>.safetensors` (`embeddings` [N, D] F32,
 * `labels` [N] I32) and `<cache>/manifest.json` with the encoder hash, each split's data-set hash and count.
 * A run whose encoder and data hashes match the manifest reads the files instead of running the encoder.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../core/atomic-write.ts';
import { Progress } from '../core/progress.ts';
import { toFloat32 } from '../io/safetensors.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors-file.ts';
import { datasetHash, readSample, type SampleRef, type Split } from './dataset.ts';
import type { ImageEncoder } from './encoder.ts';

export interface SplitEmbeddings {
  /** [N, D] row-major. */
  x: Float32Array;
  y: Int32Array;
  n: number;
  dim: number;
}

export interface CacheManifest {
  encoderHash: string;
  encoder: string;
  size: number | null;
  splits: Record<string, { datasetHash: string; count: number; dim: number; file: string }>;
}

export interface EmbedOptions {
  /** Resize every patch to size×size before embedding (required when patch sizes differ). */
  size?: number;
  batch?: number;
  quiet?: boolean;
}

async function computeSplit(
  encoder: ImageEncoder,
  samples: SampleRef[],
  o: EmbedOptions,
  label: string,
): Promise<SplitEmbeddings> {
  const batch = o.batch ?? 16;
  const rows: Float32Array[] = [];
  const progress = new Progress(`embed ${label}`, samples.length);
  for (let i = 0; i < samples.length; i += batch) {
    const group = samples.slice(i, i + batch);
    const patches = await Promise.all(group.map((s) => readSample(s, o.size)));
    // Encoders take same-size batches: run runs of equal size together.
    for (let j = 0; j < patches.length; ) {
      let k = j + 1;
      while (
        k < patches.length &&
        patches[k]!.width === patches[j]!.width &&
        patches[k]!.height === patches[j]!.height
      )
        k++;
      rows.push(...(await encoder.embed(patches.slice(j, k))));
      j = k;
    }
    if (!o.quiet) progress.update(Math.min(i + batch, samples.length), {}, i + batch >= samples.length);
  }
  if (!o.quiet && samples.length > 0) progress.done();
  const dim = rows[0]?.length ?? 0;
  const x = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => {
    if (r.length !== dim) throw new Error(`encoder gave ${r.length}-d and ${dim}-d embeddings in one split`);
    x.set(r, i * dim);
  });
  return { x, y: Int32Array.from(samples, (s) => s.label), n: samples.length, dim };
}

async function readManifest(path: string): Promise<CacheManifest | null> {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(await readFile(path, 'utf8')) as CacheManifest;
  } catch {
    return null; // a damaged manifest only costs a recomputation
  }
}

/** Embeddings per split, from the cache when the encoder and the split's data are unchanged. */
export async function embedSplits(
  encoder: ImageEncoder,
  samples: Record<Split, SampleRef[]>,
  cacheDir: string,
  o: EmbedOptions = {},
): Promise<{ splits: Record<Split, SplitEmbeddings>; reused: Split[]; computed: Split[] }> {
  const manifestPath = join(cacheDir, 'manifest.json');
  const old = await readManifest(manifestPath);
  const sameEncoder = old?.encoderHash === encoder.hash && (old?.size ?? null) === (o.size ?? null);
  const manifest: CacheManifest = {
    encoderHash: encoder.hash,
    encoder: encoder.describe,
    size: o.size ?? null,
    splits: sameEncoder ? { ...old!.splits } : {},
  };
  await mkdir(join(cacheDir, 'embeddings'), { recursive: true });
  const out = {} as Record<Split, SplitEmbeddings>;
  const reused: Split[] = [];
  const computed: Split[] = [];
  for (const split of Object.keys(samples) as Split[]) {
    const list = samples[split];
    const hash = await datasetHash(list, split);
    const file = join('embeddings', `${split}.safetensors`);
    const entry = manifest.splits[split];
    if (
      entry &&
      entry.datasetHash === hash &&
      entry.count === list.length &&
      existsSync(join(cacheDir, file))
    ) {
      const t = (await readSafetensors(join(cacheDir, file))).tensors;
      const e = t.get('embeddings');
      const l = t.get('labels');
      if (e && l && e.shape[0] === list.length) {
        out[split] = {
          x: toFloat32(e, 'embeddings'),
          y: new Int32Array(l.bytes.slice().buffer),
          n: list.length,
          dim: e.shape[1] ?? 0,
        };
        reused.push(split);
        continue;
      }
    }
    const emb = await computeSplit(encoder, list, o, split);
    const labelBytes = new Uint8Array(emb.y.buffer.slice(0));
    await writeSafetensors(join(cacheDir, file), [
      ['embeddings', { dtype: 'F32', shape: [emb.n, emb.dim], bytes: new Uint8Array(emb.x.buffer.slice(0)) }],
      ['labels', { dtype: 'I32', shape: [emb.n], bytes: labelBytes }],
    ]);
    manifest.splits[split] = { datasetHash: hash, count: emb.n, dim: emb.dim, file };
    out[split] = emb;
    computed.push(split);
  }
  await writeJsonAtomic(manifestPath, manifest);
  return { splits: out, reused, computed };
}

/**
 * The model side of whole-slide inference: a batch of preprocessed tiles (NCHW float32) in, logits (NCHW, stride 4)
 * out. ONNX Runtime by default — a SegFormer checkpoint folder is exported to ONNX once into a cache folder — or the
 * TF.js model as the fallback backend.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ready, tf } from '../engine/index.ts';
import {
  loadSegformer,
  numLabels as numLabelsOf,
  twoClassLogitsNCHW,
  twoClassNames,
} from '../models/segformer/index.ts';
import {
  defaultPreprocessorConfig,
  loadPreprocessorConfig,
  type PreprocessorConfig,
} from '../models/segformer/preprocessor.ts';
import { exportSegformerOnnx } from '../onnx/index.ts';
import { ModelThread } from './model-thread.ts';

export type InferBackend = 'onnx' | 'tfjs';

export interface TileLogits {
  /** NCHW float32. */
  data: Float32Array;
  n: number;
  classes: number;
  height: number;
  width: number;
  /**
   * Present when the runner moved the input to another thread: the input's memory handed back, to be used in
   * place of the (now detached) array passed to `run`.
   */
  input?: Float32Array;
}

export interface TileRunner {
  readonly backend: InferBackend;
  readonly numLabels: number;
  /** Class names by class index (id2label, or class_<i>). */
  readonly classNames: string[];
  /** Per-channel multiplier and offset: value = pixel * scale[c] + offset[c] (rescale then normalise). */
  readonly scale: [number, number, number];
  readonly offset: [number, number, number];
  run(pixels: Float32Array, n: number, height: number, width: number): Promise<TileLogits>;
  release(): Promise<void>;
}

export interface TileRunnerOptions {
  backend?: InferBackend;
  /** Where a checkpoint folder's ONNX export is cached (default: `<model>/.onnx-cache`). */
  cacheDir?: string;
  /** ONNX Runtime intra-op threads (default: all cores). */
  threads?: number;
  /**
   * Export a checkpoint folder with the decoder's projections folded into its fuse convolution (default true:
   * the same function up to float rounding, about a third less work for MiT-B0 at 512 px; see
   * onnx/export-segformer.ts). An .onnx file is used as it is.
   */
  foldDecoder?: boolean;
}

/** Rescale + normalise folded into one multiply-add per channel, from a preprocessor config. */
export function pixelTransform(pp: PreprocessorConfig): {
  scale: [number, number, number];
  offset: [number, number, number];
} {
  const r = pp.do_rescale ? pp.rescale_factor : 1;
  const scale: [number, number, number] = [r, r, r];
  const offset: [number, number, number] = [0, 0, 0];
  if (pp.do_normalize) {
    for (let c = 0; c < 3; c++) {
      scale[c] = r / pp.image_std[c]!;
      offset[c] = -pp.image_mean[c]! / pp.image_std[c]!;
    }
  }
  return { scale, offset };
}

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function classNamesOf(id2label: unknown, numLabels: number): string[] {
  const names: string[] = [];
  const map = (id2label ?? {}) as Record<string, unknown>;
  for (let i = 0; i < numLabels; i++)
    names.push(typeof map[String(i)] === 'string' ? (map[String(i)] as string) : `class_${i}`);
  return names;
}

/**
 * A one-logit (binary) model's runner as a two-class one: background logit 0 beside the model's logit z, so the
 * softmax is [1 − σ(z), σ(z)] and the labels are foreground where σ(z) > 0.5 (models/segformer/binary.ts).
 */
function asTwoClass(runner: TileRunner): TileRunner {
  if (runner.numLabels !== 1) return runner;
  return {
    ...runner,
    numLabels: 2,
    classNames: twoClassNames(runner.classNames[0]),
    async run(pixels, n, height, width) {
      const out = await runner.run(pixels, n, height, width);
      const data = twoClassLogitsNCHW(out.data, out.n, out.height * out.width);
      return { ...out, data, classes: 2 };
    },
    release: () => runner.release(),
  };
}

/** Loads a model folder (config.json + weights) or a .onnx file for tile inference. */
export async function loadTileRunner(model: string, opts: TileRunnerOptions = {}): Promise<TileRunner> {
  return asTwoClass(await loadRunner(model, opts));
}

async function loadRunner(model: string, opts: TileRunnerOptions): Promise<TileRunner> {
  const backend = opts.backend ?? 'onnx';
  if (backend !== 'onnx' && backend !== 'tfjs')
    throw new Error(`backend must be onnx or tfjs, got ${backend}`);
  if (!existsSync(model)) throw new Error(`${model}: model not found`);
  const isDir = (await stat(model)).isDirectory();
  const modelDir = isDir ? model : dirname(model);
  const pp = existsSync(join(modelDir, 'preprocessor_config.json'))
    ? await loadPreprocessorConfig(modelDir)
    : defaultPreprocessorConfig();
  const { scale, offset } = pixelTransform(pp);
  const config = await readJson(join(modelDir, 'config.json'));

  if (backend === 'tfjs') {
    if (!isDir) throw new Error(`${model}: --runtime tfjs needs a checkpoint folder, not an .onnx file`);
    await ready();
    const { model: net } = await loadSegformer(model);
    const numLabels = numLabelsOf(net.config);
    return {
      backend,
      numLabels,
      classNames: classNamesOf(net.config.id2label, numLabels),
      scale,
      offset,
      async run(pixels, n, height, width) {
        const out = tf.tidy(() => {
          const nchw = tf.tensor4d(pixels, [n, 3, height, width]);
          const logits = net.forward(tf.transpose(nchw, [0, 2, 3, 1]) as tf.Tensor4D, {
            training: false,
          }).logits;
          return tf.transpose(logits, [0, 3, 1, 2]);
        });
        const data = (await out.data()) as Float32Array;
        const [, classes, h, w] = out.shape as number[];
        out.dispose();
        return { data, n, classes: classes!, height: h!, width: w! };
      },
      async release() {
        net.dispose();
      },
    };
  }

  let onnxPath = model;
  if (isDir) {
    // Exported once per checkpoint content: the cache key hashes the config and the weights' size and mtime.
    const cacheDir = opts.cacheDir ?? join(model, '.onnx-cache');
    const weights = ['model.safetensors', 'model.safetensors.index.json'].find((f) =>
      existsSync(join(model, f)),
    );
    const st = weights ? await stat(join(model, weights)) : null;
    const foldDecoder = opts.foldDecoder ?? true;
    const key = createHash('sha1')
      .update(JSON.stringify(config))
      .update(`${st?.size}:${st?.mtimeMs}`)
      .update(foldDecoder ? ':folded' : '')
      .digest('hex')
      .slice(0, 12);
    onnxPath = join(cacheDir, `model-${key}.onnx`);
    if (!existsSync(onnxPath)) {
      await mkdir(cacheDir, { recursive: true });
      await exportSegformerOnnx(model, onnxPath, { foldDecoder });
    }
  }
  // On its own thread (the session would block this one); intra-op threads sleep when idle, leaving the cores to
  // decoding and blending in between operators.
  const session = await ModelThread.start(onnxPath, { threads: opts.threads, spinning: false });
  // Class count: the checkpoint config when there is one, else one probe run.
  let numLabels = config
    ? Object.keys((config.id2label as object) ?? {}).length || Number(config.num_labels)
    : 0;
  if (!numLabels) {
    const probe = await session.run(new Float32Array(3 * 32 * 32), [1, 3, 32, 32]);
    numLabels = probe.dims[1];
  }
  const source = onnxPath;
  return {
    backend,
    numLabels,
    classNames: classNamesOf(config?.id2label, numLabels),
    scale,
    offset,
    async run(pixels, n, height, width) {
      const dims: [number, number, number, number] = [n, 3, height, width];
      if (pixels.length !== n * 3 * height * width)
        throw new Error(
          `${source}: input has ${pixels.length} values but [${dims}] needs ${n * 3 * height * width}`,
        );
      const out = await session.run(pixels, dims);
      const [, classes, h, w] = out.dims;
      return { data: out.data, n, classes, height: h, width: w, input: out.input };
    },
    release: () => session.release(),
  };
}

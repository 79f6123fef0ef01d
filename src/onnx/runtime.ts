/**
 * Runs an exported SegFormer (.onnx, input `pixel_values` NCHW float32 → output `logits` NCHW at stride 4)
 * with onnxruntime-node. The CUDA execution provider is used when the installed onnxruntime-node ships it
 * (its provider libraries sit next to the native binding); otherwise, or when it fails to start, the CPU one.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';

export type OnnxDevice = 'auto' | 'cpu' | 'cuda';

export interface OnnxSegmenterOptions {
  /** 'auto' (default): CUDA when available, else CPU. 'cuda' fails if the CUDA provider cannot start. */
  device?: OnnxDevice;
  /** Threads for one operator (default: all cores). */
  intraOpThreads?: number;
  /**
   * Let idle intra-op threads spin for the next operator (ONNX Runtime's default, true). Off, they sleep: a little
   * latency per operator, but the cores are free for other work of the process (decoding, blending) and for
   * other processes, which is faster overall whenever the cores are shared.
   */
  spinning?: boolean;
}

export interface OnnxLogits {
  /** NCHW float32 logits. */
  data: Float32Array;
  dims: [number, number, number, number];
}

export class OnnxSegmenter {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** The execution provider actually in use. */
    readonly executionProvider: 'cpu' | 'cuda',
    private readonly source: string,
  ) {}

  /** Loads a model from a path or from the .onnx bytes. */
  static async load(model: string | Uint8Array, options: OnnxSegmenterOptions = {}): Promise<OnnxSegmenter> {
    const source = typeof model === 'string' ? model : '<onnx bytes>';
    if (typeof model === 'string' && !existsSync(model)) throw new Error(`${model}: not found`);
    const device = options.device ?? 'auto';
    const threads = options.intraOpThreads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) {
      throw new Error(`intraOpThreads must be a positive integer (got ${threads})`);
    }
    const base: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      ...(options.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
    };
    const wantCuda = device === 'cuda' || (device === 'auto' && cudaProviderInstalled());
    if (wantCuda) {
      try {
        const session = await createSession(model, { ...base, executionProviders: ['cuda'] });
        return new OnnxSegmenter(session, 'cuda', source);
      } catch (e) {
        if (device === 'cuda')
          throw new Error(`${source}: CUDA execution provider unavailable (${firstLine(e)})`);
      }
    }
    const session = await createSession(model, { ...base, executionProviders: ['cpu'] }).catch(
      (e: unknown) => {
        throw new Error(`${source}: cannot load ONNX model (${firstLine(e)})`);
      },
    );
    return new OnnxSegmenter(session, 'cpu', source);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** Runs `pixelValues` (NCHW float32, preprocessed as SegformerImageProcessor does) and returns the logits. */
  async run(pixelValues: Float32Array, dims: readonly number[]): Promise<OnnxLogits> {
    if (dims.length !== 4 || !dims.every((d) => Number.isInteger(d) && d > 0)) {
      throw new Error(`${this.source}: input dims must be [n, c, h, w] positive integers (got [${dims}])`);
    }
    const expected = dims.reduce((a, b) => a * b, 1);
    if (pixelValues.length !== expected) {
      throw new Error(
        `${this.source}: input has ${pixelValues.length} values but [${dims}] needs ${expected}`,
      );
    }
    const input = new ort.Tensor('float32', pixelValues, dims);
    let outputs: ort.InferenceSession.ReturnType;
    try {
      outputs = await this.session.run({ [this.session.inputNames[0]!]: input });
    } catch (e) {
      throw new Error(`${this.source}: inference failed for input [${dims}] (${firstLine(e)})`);
    } finally {
      input.dispose();
    }
    const logits = outputs[this.session.outputNames[0]!]!;
    const out: OnnxLogits = {
      data: logits.data as Float32Array,
      dims: logits.dims as unknown as [number, number, number, number],
    };
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function createSession(model: string | Uint8Array, options: ort.InferenceSession.SessionOptions) {
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, options)
    : ort.InferenceSession.create(model, options);
}

/** True when onnxruntime-node's CUDA provider library is installed next to its native binding. */
export function cudaProviderInstalled(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const root = dirname(require.resolve('onnxruntime-node/package.json'));
    const binDir = join(root, 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(join(binDir, 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!;
}

/**
 * SegFormer inference in the browser on ONNX Runtime Web (WebGPU where the browser has it, else wasm), with the same
 * graph `slideseg export` writes: `pixel_values` float32 NCHW in, `logits` float32 NCHW at stride 4 out.
 * `onnxruntime-web` is an optional peer dependency of slideseg; install it to use this module.
 */
import type * as ort from 'onnxruntime-web';

export interface WebSegmenterOptions {
  /** Execution providers in order of preference (default: webgpu when available, then wasm). */
  executionProviders?: string[];
}

export class OnnxWebSegmenter {
  private constructor(
    private readonly ortApi: typeof ort,
    private readonly session: ort.InferenceSession,
  ) {}

  /** Loads an exported model from its bytes (e.g. `await (await fetch('model.onnx')).arrayBuffer()`). */
  static async create(
    model: ArrayBuffer | Uint8Array,
    opts: WebSegmenterOptions = {},
  ): Promise<OnnxWebSegmenter> {
    const ortApi = (await import('onnxruntime-web')) as typeof ort;
    const nav = (globalThis as { navigator?: object }).navigator;
    const hasWebGpu = nav !== undefined && 'gpu' in nav;
    const executionProviders = opts.executionProviders ?? (hasWebGpu ? ['webgpu', 'wasm'] : ['wasm']);
    const bytes = model instanceof Uint8Array ? model : new Uint8Array(model);
    const session = await ortApi.InferenceSession.create(bytes, { executionProviders });
    return new OnnxWebSegmenter(ortApi, session);
  }

  /** Logits [N, numLabels, ceil(H/4), ceil(W/4)] for normalised pixels [N, 3, H, W]. */
  async run(
    pixels: Float32Array,
    dims: [number, number, number, number],
  ): Promise<{ data: Float32Array; dims: number[] }> {
    const input = new this.ortApi.Tensor('float32', pixels, dims);
    const out = await this.session.run({ pixel_values: input });
    const logits = out.logits!;
    return { data: logits.data as Float32Array, dims: [...logits.dims] };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * The engine for browsers and bundlers: TF.js core with the wasm and cpu backends, every gradient and the chained
 * tensor methods (`x.mul(…)`; tfjs-core's own ESM build, which bundlers resolve and Node cannot), and slideseg's
 * training kernels. No Node built-ins.
 */
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { registerWasmTrainingKernels } from './kernels/index.ts';
import { tf } from './tf.ts';

export { tf };

export interface BrowserReadyOptions {
  /** 'wasm' (default, falls back to 'cpu') or 'cpu'. */
  backend?: 'wasm' | 'cpu';
  /**
   * Where the tfjs-backend-wasm `.wasm` files are served from (a URL prefix ending in '/'), when the bundler does not
   * place them beside the bundle.
   */
  wasmPaths?: string;
}

let readyBackend: string | undefined;

/** Selects and initialises a backend; await it once before creating tensors. */
export async function ready(opts: BrowserReadyOptions = {}): Promise<string> {
  const wanted = opts.backend;
  if (readyBackend && (wanted == null || wanted === readyBackend)) return readyBackend;
  registerWasmTrainingKernels();
  tf.enableProdMode();
  if (opts.wasmPaths) setWasmPaths(opts.wasmPaths);
  for (const name of wanted ? [wanted] : ['wasm', 'cpu']) {
    if (await tf.setBackend(name)) {
      await tf.ready();
      readyBackend = name;
      return name;
    }
  }
  throw new Error(`no TF.js backend could be initialised (tried ${wanted ?? 'wasm, cpu'})`);
}

/**
 * The tensor engine: one TF.js instance shared by the whole library and its callers.
 *
 * Backends, in order of preference: `tensorflow` (tfjs-node, only when the user installed it),
 * `wasm` (the default: SIMD kernels, ~20x the pure-JS `cpu` backend on matmul), then `cpu`.
 */
import { createRequire } from 'node:module';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// The union bundle registers every gradient; tfjs-core's own ESM build cannot be imported by Node.
import '@tensorflow/tfjs';
import { registerWasmTrainingKernels } from './kernels/index.ts';
import { tf } from './tf.ts';

export { copyTensorInto } from './tensor-copy.ts';
export { tf };

export type BackendName = 'wasm' | 'cpu' | 'tensorflow';

const require = createRequire(import.meta.url);
let tfjsNodeTried = false;

/** Loads `@tensorflow/tfjs-node` if the user installed it; returns whether it is available. */
function tryTfjsNode(): boolean {
  if (!tfjsNodeTried) {
    tfjsNodeTried = true;
    try {
      require('@tensorflow/tfjs-node');
    } catch {
      // Optional dependency: its install downloads a native binary, which is often impossible.
    }
  }
  return tf.findBackendFactory('tensorflow') != null;
}

let readyBackend: string | undefined;

/**
 * Selects and initialises a backend; await it once before creating tensors.
 * With no argument: `SLIDESEG_BACKEND` if set, else tfjs-node when installed, else wasm, else cpu.
 */
export async function ready(backend?: BackendName | string): Promise<string> {
  const wanted = backend ?? process.env.SLIDESEG_BACKEND;
  if (readyBackend && (wanted == null || wanted === readyBackend)) return readyBackend;
  registerWasmTrainingKernels();
  // Production mode: no per-op debug checks, and no tfjs-node advertisement when the cpu backend starts.
  tf.enableProdMode();
  const candidates: string[] = wanted
    ? [wanted]
    : tryTfjsNode()
      ? ['tensorflow', 'wasm', 'cpu']
      : ['wasm', 'cpu'];
  if (wanted === 'tensorflow' && !tryTfjsNode()) {
    throw new Error("backend 'tensorflow' needs @tensorflow/tfjs-node, which is not installed");
  }
  for (const name of candidates) {
    if (tf.findBackendFactory(name) == null) {
      if (wanted)
        throw new Error(`unknown backend '${name}' (available: wasm, cpu, tensorflow if installed)`);
      continue;
    }
    if (await tf.setBackend(name)) {
      await tf.ready();
      readyBackend = name;
      if (process.env.SLIDESEG_VERBOSE === '1') process.stderr.write(`slideseg: TF.js backend ${name}\n`);
      return name;
    }
    if (wanted) throw new Error(`backend '${name}' failed to initialise`);
  }
  throw new Error('no TF.js backend could be initialised');
}

/** The active backend's name (after `ready`). */
export function backendName(): string {
  return tf.getBackend();
}

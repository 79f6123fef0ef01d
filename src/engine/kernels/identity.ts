/**
 * Identity for wasm without a copy. The stock kernel copies the whole tensor, and the engine clones (Identity)
 * every tensor a gradient saves for the backward pass, so a training forward copied each activation once more:
 * ~1,200 copies per SegFormer-B0 step and twice the activation memory. TF.js tensors are immutable (variables get
 * a new dataId on assign), so sharing the storage under a reference count is what the cpu backend does too.
 */

import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

export function identityKernel(fallback: KernelFunc | undefined): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') {
      if (!fallback) throw new Error('Identity: no stock wasm kernel for string tensors');
      return fallback(args);
    }
    (args.backend as unknown as { incRef: (dataId: object) => void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

/**
 * `tf.dropout`'s multiplier tensor (engine/dropout-mask.ts) as a kernel with no inputs (wasm and cpu), so that on
 * wasm the draw is written straight into the output's heap memory: a fresh 16 MB JavaScript array per step
 * (B0's classifier dropout on a 4-crop shard) costs ~80 ms of page faults here without the CLI's malloc tuning
 * and ~4 ms with it, plus the copy into the heap.
 */

import { fillDropoutMultipliers } from '../dropout-mask.ts';
import type { HostKernelSpec } from './host-kernel.ts';
import { f32 } from './wasm-heap.ts';

export const DROPOUT_MULTIPLIERS = 'SlidesegDropoutMultipliers';

/** No inputs; attrs shape (the noise shape), rate and seed. Output: the multipliers (0 or 1/keep), float32. */
export const dropoutMultipliersSpec: HostKernelSpec = {
  kernelName: DROPOUT_MULTIPLIERS,
  inputs: [],
  outShapes: (_inputs, attrs) => [attrs.shape as number[]],
  compute: (_inputs, [out], _shapes, attrs) =>
    fillDropoutMultipliers(out!, attrs.rate as number, attrs.seed as number),
  computeWasm: (backend, _inputs, [out], attrs) => {
    fillDropoutMultipliers(f32(backend, out!), attrs.rate as number, attrs.seed as number);
    return true;
  },
};

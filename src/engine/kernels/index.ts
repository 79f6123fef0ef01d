/**
 * Kernels the wasm backend lacks but training needs. Each is registered once, for the 'wasm' backend only.
 */
let registered = false;

export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
}

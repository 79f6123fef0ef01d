/**
 * slideseg public API. Each capability lives in its own folder with a small public surface.
 */

export * from './annotations/index.ts';
export * from './demo/index.ts';
export { type BackendName, backendName, ready, tf } from './engine/index.ts';
export * from './evaluate/index.ts';
export * from './image/index.ts';
export * from './infer/index.ts';
export * from './io/index.ts';
export * from './losses/index.ts';
export * from './metrics/index.ts';
export * from './models/segformer/index.ts';
export * from './onnx/index.ts';
export * from './patching/index.ts';
export * from './slide/index.ts';
export * from './train/index.ts';
export * from './viz/index.ts';

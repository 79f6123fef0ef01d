export * from './npy.ts';
export * from './safetensors.ts';

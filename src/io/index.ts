export * from './npy.ts';
export * from './safetensors.ts';
export * from './safetensors-file.ts';

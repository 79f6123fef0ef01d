export * from './cohort.ts';
export * from './contours.ts';
export * from './omezarr-writer.ts';
export * from './slide-infer.ts';
export * from './sliding.ts';
export * from './tile-probs.ts';
export * from './tile-runner.ts';

export * from './run.ts';
export * from './weak-labels.ts';

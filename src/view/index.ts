export * from './deepzoom.ts';
export * from './label-tiles.ts';
export * from './model.ts';
export * from './server.ts';
export * from './slides.ts';

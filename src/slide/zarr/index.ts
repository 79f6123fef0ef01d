/** OME-Zarr (OME-NGFF 0.4 / 0.5) slides: local folders and HTTP(S), read chunk by chunk. */
export { type OmeZarrOptions, openOmeZarr } from './source.ts';
export { FolderStore } from './store.ts';

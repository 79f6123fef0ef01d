/**
 * sharp (libvips), loaded on first use: reading a slide's metadata (`slideseg info`) or opening a TIFF needs no
 * codec, and loading libvips is most of a short command's start-up time.
 */
import type sharpType from 'sharp';

let loading: Promise<typeof sharpType> | undefined;

export function loadSharp(): Promise<typeof sharpType> {
  loading ??= import('sharp').then((m) => m.default);
  return loading;
}

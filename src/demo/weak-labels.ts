/**
 * A documented weak labeller for the demo: nuclei are where the haematoxylin stain is dense. Each pixel's
 * haematoxylin optical density comes from Ruifrok & Johnston colour deconvolution (skimage's rgb2hed); the
 * nuclei threshold is Otsu's on the densities of tissue pixels of a low-resolution view, so one threshold
 * serves the whole slide; a 3×3 median filter removes speckle.
 */

import { rgbToHed } from '../patching/augment.ts';
import { medianFilter, otsuThreshold } from '../patching/tissue.ts';

/** Otsu threshold (as a haematoxylin density) of the tissue pixels of an RGBA view and its tissue mask. */
export function nucleiThreshold(
  view: { data: Uint8Array; width: number; height: number },
  tissue: Uint8Array,
): number {
  const densities: number[] = [];
  for (let i = 0; i < view.width * view.height; i++) {
    if (tissue[i])
      densities.push(rgbToHed(view.data[i * 4]!, view.data[i * 4 + 1]!, view.data[i * 4 + 2]!)[0]);
  }
  if (densities.length === 0) throw new Error('weak labels: the tissue mask is empty');
  // Bins span 0 … the 99th percentile, so the few saturated pixels (density up to ~9) do not squash the histogram.
  const top = Float64Array.from(densities).sort()[Math.floor(0.99 * (densities.length - 1))]!;
  const hist = new Float64Array(256);
  for (const d of densities) hist[Math.max(0, Math.min(255, Math.round((d / top) * 255)))]++;
  return ((otsuThreshold(hist) + 0.5) / 255) * top;
}

/** Binary nuclei mask (1 = nucleus) of an HWC RGB patch. */
export function weakNucleiMask(
  rgb: Uint8Array,
  width: number,
  height: number,
  threshold: number,
): Uint8Array {
  const mask = new Uint8Array(width * height);
  for (let i = 0; i < width * height; i++) {
    mask[i] = rgbToHed(rgb[i * 3]!, rgb[i * 3 + 1]!, rgb[i * 3 + 2]!)[0] > threshold ? 1 : 0;
  }
  return medianFilter(mask, width, height, 3);
}

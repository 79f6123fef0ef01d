/** The sliding window's `Normalisation` from a Hugging Face `preprocessor_config.json`. */
import type { Normalisation } from '../core/sliding.ts';
import type { PreprocessorConfig } from '../models/segformer/preprocessor.ts';

/**
 * `normaliseImage` computes (v/255 − mean)/std; a processor computes (v·r − mean)/std with rescale factor r
 * (1 without rescaling) and mean 0, std 1 without normalising. Both are affine in v, so rewrite the processor's
 * (r, mean, std) as the equivalent (mean', std') on the 1/255 scale: std' = std/(255r), mean' = mean/(255r).
 */
export function normalisationOf(pre: PreprocessorConfig): Normalisation {
  const r = pre.do_rescale ? pre.rescale_factor : 1;
  const mean = pre.do_normalize ? pre.image_mean : [0, 0, 0];
  const std = pre.do_normalize ? pre.image_std : [1, 1, 1];
  const k = 255 * r;
  const pick = (v: number[], i: number) => v[Math.min(i, v.length - 1)]!;
  return {
    mean: [0, 1, 2].map((i) => pick(mean, i) / k) as [number, number, number],
    std: [0, 1, 2].map((i) => pick(std, i) / k) as [number, number, number],
  };
}

/**
 * A SegFormer in eval mode seen as a tile model (the shape `infer/sliding.ts` calls `TileModel`): pixels NHWC in,
 * logits NHWC at stride 4 out. A one-logit model is presented as two classes (background, foreground at
 * σ(z) > threshold), see binary.ts. Declared here by shape so that models/ need not import infer/.
 */
import { tf } from '../../engine/index.ts';
import { labelClasses, twoClassLogits } from './binary.ts';
import { numLabels } from './config.ts';
import type { Segformer } from './model.ts';

export interface SegformerTileModel {
  numLabels: number;
  logits(pixels: tf.Tensor4D): tf.Tensor4D;
}

export function tileModelOf(model: Segformer, threshold = 0.5): SegformerTileModel {
  const binary = numLabels(model.config) === 1;
  return {
    numLabels: labelClasses(numLabels(model.config)),
    logits: (x) =>
      binary
        ? tf.tidy(() => twoClassLogits(model.forward(x, { training: false }).logits, threshold))
        : model.forward(x, { training: false }).logits,
  };
}

/**
 * Turns the label-map inputs the metrics accept (TF.js tensors, typed arrays, plain arrays) into flat
 * integer arrays, checking that every value is a whole number.
 */
import { tf } from '../engine/tf.ts';

/** A label map or label vector: a TF.js tensor, a typed array or a plain array of class indices. */
export type LabelInput = tf.Tensor | ArrayLike<number>;

/** A flat view of a label input, with the batch size when the input says it (tensor of rank >= 3). */
export interface FlatLabels {
  values: ArrayLike<number>;
  /** Leading dimension of a rank >= 3 tensor ([N,H,W] or [N,H,W,1]); 1 otherwise. */
  images: number;
}

export function flattenLabels(input: LabelInput, what: string): FlatLabels {
  if (input instanceof tf.Tensor) {
    const images = input.rank >= 3 ? input.shape[0]! : 1;
    return { values: input.dataSync(), images };
  }
  if (input == null || typeof (input as ArrayLike<number>).length !== 'number') {
    throw new TypeError(`${what}: expected a tf.Tensor, a typed array or an array of class indices`);
  }
  return { values: input, images: 1 };
}

/** Throws when `v` is not an integer in [0, numClasses) (the ignore index is checked by the caller). */
export function checkClassIndex(v: number, numClasses: number, what: string, at: number): void {
  if (!(Number.isInteger(v) && v >= 0 && v < numClasses)) {
    throw new RangeError(`${what}[${at}] = ${v} is not a class index in [0, ${numClasses})`);
  }
}

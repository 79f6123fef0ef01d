/**
 * Eager validation of loss inputs: shapes, dtypes and target values are checked before any graph is built,
 * so a bad batch fails with a message that says what is wrong instead of producing NaN or a silent wrong answer.
 */
import type { tf } from '../engine/tf.ts';
import { MODES, type Mode, type Reduction } from './types.ts';

/** A target read back to the host, with the layout facts every segmentation loss needs. */
export interface SegTarget {
  /** Target values in channels-last order: [N*P] for binary/multiclass, [N*P*C] for multilabel. */
  values: Float32Array | Int32Array | Uint8Array;
  /** Batch size. */
  n: number;
  /** Pixels per image (product of the spatial dimensions). */
  p: number;
  /** Channels of pred. */
  c: number;
}

const shapeText = (shape: readonly number[]): string => `[${shape.join(',')}]`;
const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

export function checkMode(loss: string, mode: unknown): Mode {
  if (!MODES.includes(mode as Mode)) {
    throw new Error(`${loss}: mode must be one of ${MODES.join(', ')}, got ${JSON.stringify(mode)}`);
  }
  return mode as Mode;
}

export function checkReduction(loss: string, reduction: unknown): Reduction {
  if (reduction !== 'mean' && reduction !== 'sum') {
    throw new Error(`${loss}: reduction must be 'mean' or 'sum', got ${JSON.stringify(reduction)}`);
  }
  return reduction;
}

export function checkNumber(
  loss: string,
  name: string,
  value: unknown,
  min = -Infinity,
  max = Infinity,
): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    const range = `${Number.isFinite(min) ? `>= ${min}` : ''}${Number.isFinite(min) && Number.isFinite(max) ? ' and ' : ''}${Number.isFinite(max) ? `<= ${max}` : ''}`;
    throw new Error(
      `${loss}: ${name} must be a finite number${range ? ` ${range}` : ''}, got ${String(value)}`,
    );
  }
  return value;
}

export function checkPred(loss: string, pred: tf.Tensor, minRank = 2): void {
  if (pred == null || typeof (pred as tf.Tensor).dataSync !== 'function') {
    throw new Error(`${loss}: pred must be a tf.Tensor`);
  }
  if (pred.dtype !== 'float32') throw new Error(`${loss}: pred must be float32, got ${pred.dtype}`);
  if (pred.rank < minRank) {
    throw new Error(
      `${loss}: pred must have rank >= ${minRank} ([N,...,C]), got shape ${shapeText(pred.shape)}`,
    );
  }
  if (pred.size === 0) throw new Error(`${loss}: pred is empty (shape ${shapeText(pred.shape)})`);
}

function checkTensor(loss: string, target: tf.Tensor): void {
  if (target == null || typeof (target as tf.Tensor).dataSync !== 'function') {
    throw new Error(`${loss}: target must be a tf.Tensor`);
  }
}

/**
 * Validates a segmentation target against pred for the given mode and reads it back.
 * Multiclass targets must be int32 indices in [0, C) or `ignoreIndex`; binary/multilabel targets must be
 * float32/int32/bool values in [0, 1] or `ignoreIndex`.
 */
export function readSegTarget(
  loss: string,
  mode: Mode,
  pred: tf.Tensor,
  target: tf.Tensor,
  ignoreIndex: number | undefined | null,
): SegTarget {
  checkPred(loss, pred);
  checkTensor(loss, target);
  const shape = pred.shape;
  const c = shape[shape.length - 1];
  const n = shape[0];
  const p = pred.size / (n * c);
  const spatial = shape.slice(0, -1);
  if (mode === 'binary' && c !== 1) {
    throw new Error(
      `${loss}: binary mode needs pred with 1 channel ([N,H,W,1]), got shape ${shapeText(shape)}`,
    );
  }
  if (mode === 'multiclass') {
    if (!sameShape(target.shape, spatial)) {
      throw new Error(
        `${loss}: multiclass target must have shape ${shapeText(spatial)} (pred ${shapeText(shape)} without channels), got ${shapeText(target.shape)}`,
      );
    }
    if (target.dtype !== 'int32') {
      throw new Error(`${loss}: multiclass target must be int32 class indices, got dtype ${target.dtype}`);
    }
  } else {
    const ok = sameShape(target.shape, shape) || (mode === 'binary' && sameShape(target.shape, spatial));
    if (!ok) {
      throw new Error(
        `${loss}: ${mode} target must have shape ${shapeText(shape)} like pred, got ${shapeText(target.shape)}`,
      );
    }
    if (target.dtype !== 'float32' && target.dtype !== 'int32' && target.dtype !== 'bool') {
      throw new Error(`${loss}: ${mode} target must be float32, int32 or bool, got dtype ${target.dtype}`);
    }
  }
  const values = target.dataSync() as Float32Array | Int32Array | Uint8Array;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (ignoreIndex != null && v === ignoreIndex) continue;
    if (mode === 'multiclass') {
      if (!(v >= 0 && v < c)) {
        throw new Error(
          `${loss}: target value ${v} at flat index ${i} is out of range: classes are 0..${c - 1}${ignoreIndex != null ? ` (ignoreIndex ${ignoreIndex})` : ''}`,
        );
      }
    } else if (!(v >= 0 && v <= 1)) {
      throw new Error(
        `${loss}: target value ${v} at flat index ${i} is out of range: ${mode} targets must lie in [0, 1]${ignoreIndex != null ? ` or equal ignoreIndex ${ignoreIndex}` : ''}`,
      );
    }
  }
  return { values, n, p, c };
}

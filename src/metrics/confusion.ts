/**
 * A streaming confusion matrix for semantic segmentation: feed label maps image by image with `update`,
 * read every score with `compute`. The numClasses² counts (float64, exact up to 2^53 pixels) are the
 * only state kept, so evaluating a whole data set never holds its images; with `perImage` a further
 * numClasses² counts per image are kept to report per-image scores.
 */
import { checkClassIndex, flattenLabels, type LabelInput } from './labels.ts';
import { metricsFromCounts, type SegmentationMetrics } from './segmentation.ts';

export interface ConfusionMatrixOptions {
  /** Target value whose pixels are left out (e.g. 255); pixels where the target equals it are skipped. */
  ignoreIndex?: number | null;
  /** Also keep one matrix per image and report per-image scores in `compute().perImage`. */
  perImage?: boolean;
}

export interface UpdateOptions {
  /**
   * How many images the flat inputs hold, split into equal consecutive parts for per-image scores.
   * Defaults to the leading dimension of a rank >= 3 tensor ([N,H,W]), else 1.
   */
  images?: number;
}

export interface ConfusionResult extends SegmentationMetrics {
  /** Per-image scores, in update order (only with `perImage: true`). */
  perImage?: SegmentationMetrics[];
}

export class ConfusionMatrix {
  readonly numClasses: number;
  readonly ignoreIndex: number | null;
  /** Row-major counts, rows = target class, columns = predicted class. */
  readonly counts: Float64Array;
  private readonly imageCounts: Float64Array[] | null;

  constructor(numClasses: number, options: ConfusionMatrixOptions = {}) {
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new RangeError(`ConfusionMatrix: numClasses must be a positive integer, got ${numClasses}`);
    }
    this.numClasses = numClasses;
    this.ignoreIndex = options.ignoreIndex ?? null;
    this.counts = new Float64Array(numClasses * numClasses);
    this.imageCounts = options.perImage ? [] : null;
  }

  /** Adds one prediction/target pair (same number of elements; int class indices). */
  update(pred: LabelInput, target: LabelInput, options: UpdateOptions = {}): this {
    const p = flattenLabels(pred, 'pred');
    const t = flattenLabels(target, 'target');
    const n = t.values.length;
    if (p.values.length !== n) {
      throw new RangeError(`ConfusionMatrix.update: pred has ${p.values.length} elements, target has ${n}`);
    }
    const images = options.images ?? t.images;
    if (!Number.isInteger(images) || images < 1 || n % images !== 0) {
      throw new RangeError(`ConfusionMatrix.update: ${n} pixels cannot be split into ${images} images`);
    }
    // Count into fresh matrices and merge only once every pixel is valid, so a refused update leaves the
    // running counts untouched.
    const per = n / images;
    const parts: Float64Array[] = [];
    for (let i = 0; i < images; i++) {
      const own = new Float64Array(this.counts.length);
      this.accumulate(p.values, t.values, i * per, (i + 1) * per, own);
      parts.push(own);
    }
    for (const own of parts) {
      for (let k = 0; k < own.length; k++) this.counts[k] += own[k]!;
      this.imageCounts?.push(own);
    }
    return this;
  }

  /** Scores over everything seen so far. Throws if no pixel was counted. */
  compute(): ConfusionResult {
    const result: ConfusionResult = metricsFromCounts(this.counts, this.numClasses);
    if (result.pixels === 0) {
      throw new Error('ConfusionMatrix.compute: no pixel counted (no update, or every target pixel ignored)');
    }
    if (this.imageCounts) {
      result.perImage = this.imageCounts.map((c) => metricsFromCounts(c, this.numClasses));
    }
    return result;
  }

  /** Forgets every count. */
  reset(): void {
    this.counts.fill(0);
    if (this.imageCounts) this.imageCounts.length = 0;
  }

  private accumulate(
    pred: ArrayLike<number>,
    target: ArrayLike<number>,
    from: number,
    to: number,
    into: Float64Array,
  ): void {
    const C = this.numClasses;
    const ignore = this.ignoreIndex;
    for (let i = from; i < to; i++) {
      const t = target[i]!;
      if (t === ignore) continue;
      const p = pred[i]!;
      // Fast path for valid indices; the checks below only run to build the error message.
      if (t >= 0 && t < C && p >= 0 && p < C && (t | 0) === t && (p | 0) === p) {
        into[t * C + p]++;
        continue;
      }
      checkClassIndex(t, C, 'target', i);
      checkClassIndex(p, C, 'pred', i);
    }
  }
}

/** Scores of one prediction/target pair (or [N,H,W] batch) without keeping a matrix around. */
export function segmentationMetrics(
  pred: LabelInput,
  target: LabelInput,
  numClasses: number,
  options: ConfusionMatrixOptions & UpdateOptions = {},
): ConfusionResult {
  return new ConfusionMatrix(numClasses, options).update(pred, target, options).compute();
}

/** Command-line options shared by `infer-many`, `enqueue` and `worker`: how each slide is segmented. */

import { type TestTimeAugmentation, ttaViews } from '../core/tta.ts';
import type { SlideJobOptions } from '../infer/cohort.ts';
import type { InferBackend } from '../infer/tile-runner.ts';
import { UsageError } from './command.ts';
import { numberOption } from './options.ts';

export const SLIDE_JOB_OPTIONS = {
  model: { type: 'string' },
  mpp: { type: 'string' },
  tile: { type: 'string' },
  overlap: { type: 'string' },
  tta: { type: 'string' },
  batch: { type: 'string' },
  runtime: { type: 'string' },
  tissue: { type: 'string' },
  'slide-mpp': { type: 'string' },
  image: { type: 'string' },
  ngff: { type: 'string' },
  polygons: { type: 'string' },
  'polygon-precision': { type: 'string' },
  'polygon-simplify': { type: 'string' },
} as const;

export const SLIDE_JOB_USAGE = `  --model DIR|FILE --mpp N --tile N --overlap N --tta MODE --batch N --runtime onnx|tfjs --tissue auto|all --slide-mpp N
  --image full|overview --ngff 0.4|0.5 --polygons objects|classes|none --polygon-precision N --polygon-simplify UM
                       as for slideseg infer`;

/** A numeric flag within its range (OPTION_RANGES): a one-line usage error otherwise. */
const num = numberOption;

/**
 * Parsed option values → per-slide inference options, for `infer` and the cohort commands alike (`cwdResolve`
 * makes the model path absolute for remote workers). Bad values are usage errors.
 */
export function slideJobOptions(
  values: Record<string, string | boolean | undefined>,
  cwdResolve: (p: string) => string,
): SlideJobOptions {
  const model = values.model as string | undefined;
  if (!model) throw new UsageError('--model is required');
  const backend = (values.runtime ?? 'onnx') as InferBackend;
  if (backend !== 'onnx' && backend !== 'tfjs') throw new UsageError('--runtime must be onnx or tfjs');
  const tissue = (values.tissue ?? 'auto') as 'auto' | 'all';
  if (tissue !== 'auto' && tissue !== 'all') throw new UsageError('--tissue must be auto or all');
  const o: SlideJobOptions = { model: cwdResolve(model), backend, tissue };
  const set = (k: keyof SlideJobOptions, flag: string) => {
    const v = num(flag, values[flag] as string | undefined);
    if (v !== undefined) (o as Record<string, unknown>)[k] = v;
  };
  set('mpp', 'mpp');
  set('tile', 'tile');
  set('overlap', 'overlap');
  set('batch', 'batch');
  if (values.tta !== undefined) {
    ttaViews(values.tta as TestTimeAugmentation); // rejects unknown modes here, not in every worker
    o.tta = values.tta as TestTimeAugmentation;
  }
  set('slideMpp', 'slide-mpp');
  if (values.image !== undefined) {
    if (values.image !== 'full' && values.image !== 'overview')
      throw new UsageError('--image must be full or overview');
    o.image = values.image;
  }
  if (values.ngff !== undefined) {
    if (values.ngff !== '0.4' && values.ngff !== '0.5') throw new UsageError('--ngff must be 0.4 or 0.5');
    o.zarrFormat = values.ngff === '0.5' ? 3 : 2;
  }
  if (values.polygons !== undefined) {
    if (!['none', 'classes', 'objects'].includes(values.polygons as string))
      throw new UsageError('--polygons must be none, classes or objects');
    o.polygons = values.polygons as 'none' | 'classes' | 'objects';
  }
  set('polygonPrecision', 'polygon-precision');
  set('polygonSimplify', 'polygon-simplify');
  return o;
}

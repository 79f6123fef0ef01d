/**
 * Numeric command-line options with ranges: one table says what each flag accepts, so that `--tile 1000000000`
 * or `--mpp 0.00001` is a one-line usage error (exit 2) instead of a run that ends out of memory. The limits are
 * generous for real use and far below what would exhaust memory.
 */
import { UsageError } from './command.ts';

export interface NumberRange {
  /** Smallest accepted value (inclusive). */
  min?: number;
  /** Values must be strictly greater than this (for positive reals such as a resolution). */
  above?: number;
  /** Largest accepted value (inclusive). */
  max?: number;
  integer?: boolean;
  /** What the number is, for the message (e.g. 'µm/pixel'). */
  unit?: string;
}

/** The ranges of the numeric flags the commands share (by flag name without dashes). */
export const OPTION_RANGES: Readonly<Record<string, NumberRange>> = {
  tile: { integer: true, min: 16, max: 8192, unit: 'pixels' },
  overlap: { integer: true, min: 0, max: 4096, unit: 'pixels' },
  size: { integer: true, min: 16, max: 8192, unit: 'pixels' },
  'patch-size': { integer: true, min: 16, max: 8192, unit: 'pixels' },
  'max-size': { integer: true, min: 1, max: 65536, unit: 'pixels' },
  batch: { integer: true, min: 1, max: 4096 },
  mpp: { above: 0, min: 0.01, max: 1000, unit: 'µm/pixel' },
  'slide-mpp': { above: 0, min: 0.01, max: 1000, unit: 'µm/pixel' },
  'model-mpp': { above: 0, min: 0.01, max: 1000, unit: 'µm/pixel' },
  level: { integer: true, min: 0, max: 64 },
  workers: { integer: true, min: 0, max: 1024 },
  threads: { integer: true, min: 0, max: 1024 },
  port: { integer: true, min: 0, max: 65535 },
  steps: { integer: true, min: 1, max: 100_000_000 },
  epochs: { integer: true, min: 1, max: 1_000_000 },
  patches: { integer: true, min: 1, max: 100_000_000 },
  seed: { integer: true, min: 0, max: 2 ** 32 - 1 },
  threshold: { min: 0, max: 1 },
  'polygon-precision': { integer: true, min: 0, max: 10 },
  'polygon-simplify': { min: 0, max: 10_000, unit: 'µm' },
  attempts: { integer: true, min: 1, max: 1000 },
  'backoff-ms': { integer: true, min: 0, max: 86_400_000, unit: 'ms' },
  'idle-exit': { min: 0, max: 86_400, unit: 's' },
  'timeout-ms': { integer: true, min: 1, max: 86_400_000, unit: 'ms' },
  // region
  x: { integer: true, min: -(2 ** 31), max: 2 ** 31 - 1, unit: 'level-0 pixels' },
  y: { integer: true, min: -(2 ** 31), max: 2 ** 31 - 1, unit: 'level-0 pixels' },
  width: { integer: true, min: 1, max: 65_536, unit: 'pixels' },
  height: { integer: true, min: 1, max: 65_536, unit: 'pixels' },
  // tissue
  saturation: { integer: true, min: 0, max: 255 },
  median: { integer: true, min: 1, max: 99, unit: 'pixels' },
  'min-object': { integer: true, min: 0, max: 1e9, unit: 'mask pixels' },
  'max-hole': { integer: true, min: 0, max: 1e9, unit: 'mask pixels' },
  // patches
  count: { integer: true, min: 1, max: 100_000_000 },
  'min-tissue': { min: 0, max: 1 },
  'decode-threads': { integer: true, min: 0, max: 256 },
  prefetch: { integer: true, min: 0, max: 4096 },
  concurrency: { integer: true, min: 1, max: 1024 },
  columns: { integer: true, min: 1, max: 256 },
  // evaluate, eval-encoder, predict, export
  'ignore-index': { integer: true, min: 0, max: 65_535 },
  worst: { integer: true, min: 0, max: 10_000 },
  'num-labels': { integer: true, min: 1, max: 100_000 },
  crop: { integer: true, min: 16, max: 8192, unit: 'pixels' },
  lr: { above: 0, max: 10 },
  'weight-decay': { min: 0, max: 10 },
  val: { min: 0, max: 0.99 },
  test: { min: 0, max: 0.99 },
  runs: { integer: true, min: 1, max: 10_000 },
  patience: { integer: true, min: 0, max: 1_000_000 },
  alpha: { min: 0, max: 1 },
  opset: { integer: true, min: 17, max: 21 },
};

function describe(range: NumberRange): string {
  const kind = range.integer ? 'an integer' : 'a number';
  const lo = range.min ?? range.above;
  const unit = range.unit ? ` ${range.unit}` : '';
  if (lo !== undefined && range.max !== undefined) return `${kind} from ${lo} to ${range.max}${unit}`;
  if (lo !== undefined) return `${kind} ${range.min !== undefined ? '>=' : '>'} ${lo}${unit}`;
  if (range.max !== undefined) return `${kind} <= ${range.max}${unit}`;
  return kind;
}

/**
 * The value of `--flag` as a number within `range` (default: the flag's entry in OPTION_RANGES, else any finite
 * number), or undefined when the flag was not given. Throws a one-line UsageError otherwise.
 */
export function numberOption(
  flag: string,
  raw: string | undefined,
  range: NumberRange = OPTION_RANGES[flag] ?? {},
): number | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim();
  const n = text === '' ? Number.NaN : Number(text);
  const bad =
    !Number.isFinite(n) ||
    (range.integer === true && !Number.isInteger(n)) ||
    (range.min !== undefined && n < range.min) ||
    (range.above !== undefined && !(n > range.above)) ||
    (range.max !== undefined && n > range.max);
  if (bad)
    throw new UsageError(`--${flag} must be ${describe(range)}, got ${JSON.stringify(raw).slice(0, 40)}`);
  return n;
}

/**
 * parseArgs reads `--mpp -1` as an option followed by another option and says so in three lines; this turns its
 * error into one line that shows the `--flag=value` spelling for a value starting with a dash.
 */
export function parseArgsMessage(err: Error): string {
  const ambiguous = /Option '(-{1,2}[\w-]+)(?:[^']*)' argument is ambiguous/.exec(err.message);
  if (ambiguous) {
    const flag = ambiguous[1];
    return `${flag} needs a value; write a value that starts with '-' as ${flag}=VALUE`;
  }
  return err.message.split('\n')[0] ?? err.message;
}

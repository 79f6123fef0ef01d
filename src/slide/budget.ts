/**
 * The process-wide ceiling on decoded pixel memory that slide reads hold at once. Each read reserves what it will
 * allocate (output plus the blocks or chunks it decodes) before decoding: reads wait while others hold the budget,
 * and a single read larger than the whole budget fails at once with a clear error instead of running the process
 * out of memory. Default 2 GiB; SLIDESEG_DECODE_BUDGET_MB overrides it.
 */
import { SlideError } from './errors.ts';

const DEFAULT_BUDGET_BYTES = 2 * 1024 * 1024 * 1024;

function configuredBudget(): number {
  // `globalThis.process`: this module runs in browsers too, where there is no process.
  const mb = Number(globalThis.process?.env?.SLIDESEG_DECODE_BUDGET_MB);
  return Number.isFinite(mb) && mb > 0 ? mb * 1024 * 1024 : DEFAULT_BUDGET_BYTES;
}

export class DecodeBudget {
  #used = 0;
  readonly #waiting: { bytes: number; grant: () => void }[] = [];

  constructor(readonly limitBytes: number = configuredBudget()) {}

  get usedBytes(): number {
    return this.#used;
  }

  /** Waits until `bytes` fit, holds them, and returns the function that gives them back (call it once). */
  async reserve(source: string, bytes: number, what: string): Promise<() => void> {
    if (bytes > this.limitBytes) {
      throw new SlideError(
        source,
        `${what} needs ${Math.round(bytes / 2 ** 20)} MiB of decoded pixels, more than the process limit of ${Math.round(this.limitBytes / 2 ** 20)} MiB (SLIDESEG_DECODE_BUDGET_MB)`,
      );
    }
    if (this.#waiting.length > 0 || this.#used + bytes > this.limitBytes) {
      await new Promise<void>((grant) => this.#waiting.push({ bytes, grant }));
    } else {
      this.#used += bytes;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#used -= bytes;
      this.#grant();
    };
  }

  /** Admits waiting reads in order while they fit (first come, first served: a big read is not starved). */
  #grant(): void {
    while (this.#waiting.length > 0 && this.#used + this.#waiting[0].bytes <= this.limitBytes) {
      const next = this.#waiting.shift() as { bytes: number; grant: () => void };
      this.#used += next.bytes;
      next.grant();
    }
  }
}

/** The budget every slide of this process shares. */
export const processDecodeBudget = new DecodeBudget();

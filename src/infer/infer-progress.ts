/**
 * Tile counts of a whole-slide run and its progress: reported to the caller after every batch, and as a log line
 * at most once a second (and once at the end).
 */
import type { InferProgress } from './slide-infer-options.ts';

export class TileProgress {
  /** Tiles finished: computed, or skipped because their chunks were on disk (resume). */
  tilesDone = 0;
  /** Tiles the model ran on (a tile straddling a stripe border counts once per stripe). */
  computed = 0;
  /** Of those, the extra runs at stripe borders. */
  recomputed = 0;
  skippedResumed = 0;
  chunksWritten = 0;
  readonly #name: string;
  readonly #tilesTotal: number;
  readonly #onProgress: ((p: InferProgress) => void) | undefined;
  readonly #log: (line: string) => void;
  readonly #start = performance.now();
  #lastLog = 0;

  constructor(
    name: string,
    tilesTotal: number,
    onProgress: ((p: InferProgress) => void) | undefined,
    log: (line: string) => void,
  ) {
    this.#name = name;
    this.#tilesTotal = tilesTotal;
    this.#onProgress = onProgress;
    this.#log = log;
  }

  /** Seconds since the run's inference began. */
  get seconds(): number {
    return (performance.now() - this.#start) / 1000;
  }

  skipped(n: number): void {
    this.skippedResumed += n;
    this.tilesDone += n;
  }

  tileComputed(atStripeBorder: boolean): void {
    this.tilesDone++;
    this.computed++;
    if (atStripeBorder) this.recomputed++;
  }

  report(force = false): void {
    const { tilesDone } = this;
    const tilesTotal = this.#tilesTotal;
    const rate = this.computed / Math.max(this.seconds, 1e-9);
    const left = tilesTotal - tilesDone;
    const p: InferProgress = {
      tilesDone,
      tilesTotal,
      chunksWritten: this.chunksWritten,
      tilesPerSecond: rate,
      etaSeconds: rate > 0 ? left / rate : Number.POSITIVE_INFINITY,
    };
    this.#onProgress?.(p);
    const now = performance.now();
    if (force || now - this.#lastLog > 1000) {
      this.#lastLog = now;
      const pct = tilesTotal ? ((100 * tilesDone) / tilesTotal).toFixed(1) : '100.0';
      const eta = Number.isFinite(p.etaSeconds) ? `${p.etaSeconds.toFixed(0)}s` : '?';
      this.#log(
        `infer ${this.#name}: ${tilesDone}/${tilesTotal} tiles (${pct}%) ${rate.toFixed(2)} tiles/s ETA ${eta}`,
      );
    }
  }
}

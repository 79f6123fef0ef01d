/**
 * V8's old-generation growth while a slide is inferred. The loop's JS heap is small and steady (~56 MB live with
 * ONNX Runtime's and the slide reader's modules loaded, nothing retained per tile), so V8 sets the next
 * mark-compact's limit only ~24 MB above it, less than the young generation's capacity: incremental marking then
 * restarts every 1–2 s although nothing is left to collect, which cost 13–14 mark-compacts per 60 tiles of the 16k
 * benchmark slide (5–8 ms of main-thread pause per tile, plus the concurrent marking threads' CPU, on 2 cores that
 * ONNX Runtime needs). A growth factor of 4 (`--heap-growing-percent=300`) leaves 2 per 60 tiles; it lets the JS
 * heap reach ~4× its live size before collecting, a few hundred MB at most.
 *
 * Process-wide (V8 has one flag per process): set while at least one `inferSlide` runs and restored to V8's own
 * heuristic after the last one ends. SLIDESEG_HEAP_TUNING=0 leaves V8's defaults.
 */
import { setFlagsFromString } from 'node:v8';

const GROWING_PERCENT = 300;
let holders = 0;

/** Raises the growth factor until the returned release function is called (idempotent per holder). */
export function relaxHeapGrowth(): () => void {
  if (process.env.SLIDESEG_HEAP_TUNING === '0') return () => {};
  if (holders++ === 0) setFlagsFromString(`--heap-growing-percent=${GROWING_PERCENT}`);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    // 0 is V8's default: its own growth heuristic.
    if (--holders === 0) setFlagsFromString('--heap-growing-percent=0');
  };
}

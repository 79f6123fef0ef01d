/**
 * glibc malloc tuning for processes that allocate many large, short-lived typed arrays (slide regions, tiles, batches).
 * By default glibc serves every allocation above its mmap threshold (128 KiB, raised only as such blocks are freed)
 * with a fresh mmap, so each new 1 MiB region costs a map, a page fault per 4 KiB page on first write and an unmap
 * when V8 collects it: ~1 ms per MiB on this VM, more than composing the region from cached tiles
 * (bench/slide-read.ts). Raising the mmap and trim thresholds lets freed memory be reused instead. The cost: up to
 * `TRIM_THRESHOLD` of freed memory stays in the process instead of going back to the OS.
 *
 * Called by the CLI at start; library users may call it once. A no-op off Linux/glibc, without koffi, or with
 * SLIDESEG_MALLOC_TUNING=0. Never throws.
 */
import { createRequire } from 'node:module';

/** mallopt parameters (malloc.h). */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;
/** Allocations at or above this still get their own mapping (whole-slide label maps, model weights). */
const MMAP_THRESHOLD = 32 * 1024 * 1024;
const TRIM_THRESHOLD = 128 * 1024 * 1024;

let applied: boolean | undefined;

/** Applies the tuning once; true when it is in effect. */
export function tuneMalloc(): boolean {
  if (applied !== undefined) return applied;
  applied = false;
  if (process.platform !== 'linux' || process.env.SLIDESEG_MALLOC_TUNING === '0') return applied;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const libc = koffi.load('libc.so.6');
    // glibc only (musl has no such tuning): this symbol is glibc's.
    libc.func('const char *gnu_get_libc_version()');
    const mallopt = libc.func('int mallopt(int param, int value)');
    applied =
      mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) === 1 && mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) === 1;
  } catch {
    applied = false;
  }
  return applied;
}

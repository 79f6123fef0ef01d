/**
 * Cache of decoded blocks with a byte budget, segmented LRU: a block enters a probation segment and moves to the
 * protected segment (at most 80 % of the budget) when it is asked for again. Random reads over a large slide touch
 * most blocks once; under plain LRU that stream would flush the blocks that are used again and again (a tissue
 * mask's low-resolution level, the shared edges of overlapping inference tiles), here it only cycles through
 * probation. Concurrent requests for the same key share one in-flight load, so a tile is fetched and decoded once
 * however many reads want it at the same time.
 *
 * Values are valid until the next macrotask: readers copy them synchronously after `get` resolves, because evicted
 * blocks go to the pixel pool (pixel-pool.ts), whose buffers later decodes overwrite.
 */
import { recyclePixelBuffer } from './pixel-pool.ts';

/** Share of the budget the protected segment may hold. */
const PROTECTED_SHARE = 0.8;

export class BlockCache {
  /** Maps in least- to most-recently-used order. */
  private readonly probation = new Map<string, Uint8Array>();
  private readonly protectedEntries = new Map<string, Uint8Array>();
  private readonly inFlight = new Map<string, Promise<Uint8Array>>();
  private probationBytes = 0;
  private protectedBytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly budgetBytes: number) {}

  get size(): number {
    return this.probationBytes + this.protectedBytes;
  }

  /** The cached value, counted as a use (a block in probation is promoted), or undefined. */
  peek(key: string): Uint8Array | undefined {
    const p = this.protectedEntries.get(key);
    if (p) {
      this.protectedEntries.delete(key);
      this.protectedEntries.set(key, p);
      return p;
    }
    const v = this.probation.get(key);
    if (v) {
      this.probation.delete(key);
      this.probationBytes -= v.byteLength;
      this.protectedEntries.set(key, v);
      this.protectedBytes += v.byteLength;
      this.demoteOverflow();
    }
    return v;
  }

  /** Whether the key is cached with at least `minBytes` bytes (a partial block may hold fewer rows), or loading. */
  has(key: string, minBytes = 0): boolean {
    if (this.inFlight.has(key)) return true;
    const v = this.protectedEntries.get(key) ?? this.probation.get(key);
    return v !== undefined && v.byteLength >= minBytes;
  }

  /**
   * The cached value, or `load`'s (shared with concurrent callers of the same key). A cached value shorter than
   * `minBytes` (the top rows of a block, where more are now wanted) counts as absent and is replaced.
   */
  get(key: string, load: () => Promise<Uint8Array>, minBytes = 0): Promise<Uint8Array> {
    const hit = this.peek(key);
    if (hit && hit.byteLength >= minBytes) {
      this.hits++;
      return Promise.resolve(hit);
    }
    const pending = this.inFlight.get(key);
    if (pending) {
      this.hits++;
      return pending.then((v) => (v.byteLength >= minBytes ? v : this.get(key, load, minBytes)));
    }
    this.misses++;
    const p = load().then(
      (value) => {
        this.inFlight.delete(key);
        this.put(key, value);
        return value;
      },
      (err) => {
        this.inFlight.delete(key);
        throw err;
      },
    );
    this.inFlight.set(key, p);
    return p;
  }

  private put(key: string, value: Uint8Array): void {
    if (value.byteLength > this.budgetBytes) return;
    this.remove(key);
    this.probation.set(key, value);
    this.probationBytes += value.byteLength;
    this.evictOverflow();
  }

  /** Protected blocks beyond its share go back to probation's most-recent end. */
  private demoteOverflow(): void {
    const limit = this.budgetBytes * PROTECTED_SHARE;
    for (const [k, v] of this.protectedEntries) {
      if (this.protectedBytes <= limit) break;
      this.protectedEntries.delete(k);
      this.protectedBytes -= v.byteLength;
      this.probation.set(k, v);
      this.probationBytes += v.byteLength;
    }
    this.evictOverflow();
  }

  /** Drops probation's least recently used blocks (then protected's) until the budget holds. */
  private evictOverflow(): void {
    for (const [k, v] of this.probation) {
      if (this.size <= this.budgetBytes) return;
      this.probation.delete(k);
      this.probationBytes -= v.byteLength;
      recyclePixelBuffer(v);
    }
    for (const [k, v] of this.protectedEntries) {
      if (this.size <= this.budgetBytes) return;
      this.protectedEntries.delete(k);
      this.protectedBytes -= v.byteLength;
      recyclePixelBuffer(v);
    }
  }

  private remove(key: string): void {
    const p = this.protectedEntries.get(key);
    if (p) {
      this.protectedEntries.delete(key);
      this.protectedBytes -= p.byteLength;
    }
    const v = this.probation.get(key);
    if (v) {
      this.probation.delete(key);
      this.probationBytes -= v.byteLength;
    }
  }

  /** Drops every entry whose key starts with `prefix` (a closed slide's blocks). */
  evictPrefix(prefix: string): void {
    for (const k of [...this.probation.keys(), ...this.protectedEntries.keys()]) {
      if (k.startsWith(prefix)) this.remove(k);
    }
  }
}

/** The process-wide cache slides share unless given their own (256 MiB). */
export const sharedBlockCache = new BlockCache(256 * 1024 * 1024);

/**
 * LRU cache of decoded blocks with a byte budget. Concurrent requests for the same key share one
 * in-flight load, so a tile is fetched and decoded once however many reads want it at the same time.
 */
export class BlockCache {
  private readonly entries = new Map<string, Uint8Array>();
  private readonly inFlight = new Map<string, Promise<Uint8Array>>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly budgetBytes: number) {}

  get size(): number {
    return this.bytes;
  }

  /** The cached value, refreshed as most recently used, or undefined. */
  peek(key: string): Uint8Array | undefined {
    const v = this.entries.get(key);
    if (v) {
      this.entries.delete(key);
      this.entries.set(key, v);
    }
    return v;
  }

  has(key: string): boolean {
    return this.entries.has(key) || this.inFlight.has(key);
  }

  get(key: string, load: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const hit = this.peek(key);
    if (hit) {
      this.hits++;
      return Promise.resolve(hit);
    }
    const pending = this.inFlight.get(key);
    if (pending) {
      this.hits++;
      return pending;
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
    const old = this.entries.get(key);
    if (old) {
      this.bytes -= old.byteLength;
      this.entries.delete(key);
    }
    this.entries.set(key, value);
    this.bytes += value.byteLength;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.budgetBytes) break;
      this.entries.delete(k);
      this.bytes -= v.byteLength;
    }
  }

  /** Drops every entry whose key starts with `prefix` (a closed slide's blocks). */
  evictPrefix(prefix: string): void {
    for (const [k, v] of this.entries) {
      if (k.startsWith(prefix)) {
        this.entries.delete(k);
        this.bytes -= v.byteLength;
      }
    }
  }
}

/** The process-wide cache slides share unless given their own (256 MiB). */
export const sharedBlockCache = new BlockCache(256 * 1024 * 1024);

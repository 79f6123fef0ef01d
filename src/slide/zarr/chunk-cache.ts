/**
 * A least-recently-used cache of decoded chunks bounded by bytes, not entries: a float64 chunk costs eight
 * times a uint8 one. In-flight decodes are shared so concurrent reads of one chunk fetch it once.
 */

export class ChunkCache<V> {
  readonly #budget: number;
  readonly #entries = new Map<string, { value: V; bytes: number }>();
  readonly #pending = new Map<string, Promise<V>>();
  #used = 0;

  constructor(budgetBytes: number) {
    this.#budget = Math.max(0, budgetBytes);
  }

  get usedBytes(): number {
    return this.#used;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The cached value for `key`, or the result of `load` (cached when it fits the budget). */
  async get(key: string, load: () => Promise<V>, sizeOf: (value: V) => number): Promise<V> {
    const hit = this.#entries.get(key);
    if (hit) {
      // Re-insert to mark as most recently used (Map keeps insertion order).
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      return hit.value;
    }
    const inFlight = this.#pending.get(key);
    if (inFlight) return inFlight;
    const promise = load().then(
      (value) => {
        this.#pending.delete(key);
        this.#insert(key, value, sizeOf(value));
        return value;
      },
      (err: unknown) => {
        this.#pending.delete(key);
        throw err;
      },
    );
    this.#pending.set(key, promise);
    return promise;
  }

  clear(): void {
    this.#entries.clear();
    this.#used = 0;
  }

  #insert(key: string, value: V, bytes: number): void {
    if (bytes > this.#budget) return;
    this.#entries.set(key, { value, bytes });
    this.#used += bytes;
    for (const [oldKey, old] of this.#entries) {
      if (this.#used <= this.#budget) break;
      this.#entries.delete(oldKey);
      this.#used -= old.bytes;
    }
  }
}

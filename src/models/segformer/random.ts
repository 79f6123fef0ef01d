/**
 * A small seeded random source (mulberry32), so initial weights and dropout masks are the same on every backend
 * and every run with the same seed.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A 31-bit integer, e.g. a seed for tf.randomUniform. */
  nextSeed(): number {
    return Math.floor(this.next() * 2147483647);
  }

  /** Fills an array with N(mean, std) samples (Box-Muller). */
  normal(n: number, mean: number, std: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u1 = 1 - this.next();
      const u2 = this.next();
      const r = Math.sqrt(-2 * Math.log(u1));
      out[i] = mean + std * r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * u2);
    }
    return out;
  }

  /** N(0, std) samples redrawn until they fall in [lo, hi] (timm's trunc_normal_ with absolute bounds). */
  truncatedNormal(n: number, std: number, lo: number, hi: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let v: number;
      do {
        v = this.normal(1, 0, std)[0];
      } while (v < lo || v > hi);
      out[i] = v;
    }
    return out;
  }
}

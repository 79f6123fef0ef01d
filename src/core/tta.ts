/**
 * Test-time augmentation: a square tile is seen in several dihedral views (flips, then an optional transpose), the
 * model's probabilities for each view are mapped back to the tile's own frame and averaged. 'flip' uses the four
 * flips, 'd4' adds the transposed four (all 90° rotations and reflections).
 */

export type TestTimeAugmentation = 'none' | 'flip' | 'd4';

export interface View {
  flipH: boolean;
  flipV: boolean;
  transpose: boolean;
}

export function ttaViews(tta: TestTimeAugmentation = 'none'): View[] {
  if (tta !== 'none' && tta !== 'flip' && tta !== 'd4')
    throw new Error(`tta must be none, flip or d4, got ${JSON.stringify(tta)}`);
  const views: View[] = [];
  for (const transpose of tta === 'd4' ? [false, true] : [false])
    for (const flipV of tta === 'none' ? [false] : [false, true])
      for (const flipH of tta === 'none' ? [false] : [false, true]) views.push({ flipH, flipV, transpose });
  return views;
}

export function isIdentity(v: View): boolean {
  return !v.flipH && !v.flipV && !v.transpose;
}

const sourceCache = new Map<string, Int32Array>();

/**
 * For each pixel of the view (row-major, tile × tile), the pixel of the original tile it shows: the view is
 * transpose?(flipV?(flipH?(tile))).
 */
export function viewSource(v: View, tile: number): Int32Array {
  const key = `${+v.flipH}${+v.flipV}${+v.transpose}:${tile}`;
  const cached = sourceCache.get(key);
  if (cached) return cached;
  const src = new Int32Array(tile * tile);
  for (let ys = 0; ys < tile; ys++) {
    for (let xs = 0; xs < tile; xs++) {
      let y = v.transpose ? xs : ys;
      let x = v.transpose ? ys : xs;
      if (v.flipV) y = tile - 1 - y;
      if (v.flipH) x = tile - 1 - x;
      src[ys * tile + xs] = y * tile + x;
    }
  }
  sourceCache.set(key, src);
  return src;
}

/** The view of every tile of an NCHW batch (n × channels × tile × tile), into `out`. */
export function viewPixelsNCHW(
  pixels: Float32Array,
  n: number,
  channels: number,
  tile: number,
  v: View,
  out: Float32Array,
): Float32Array {
  const src = viewSource(v, tile);
  const plane = tile * tile;
  for (let p = 0; p < n * channels; p++) {
    const base = p * plane;
    for (let i = 0; i < plane; i++) out[base + i] = pixels[base + src[i]!]!;
  }
  return out;
}

/** Adds `weight` × a view's HWC probabilities (tile × tile × classes) into `acc`, in the original frame. */
export function accumulateViewHWC(
  probs: Float32Array,
  tile: number,
  classes: number,
  v: View,
  weight: number,
  acc: Float32Array,
): void {
  const src = viewSource(v, tile);
  for (let i = 0; i < tile * tile; i++) {
    const o = src[i]! * classes;
    const s = i * classes;
    for (let c = 0; c < classes; c++) acc[o + c] += weight * probs[s + c]!;
  }
}

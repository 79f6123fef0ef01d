/**
 * Class colours: a fixed, well-separated list for the first classes (0 = background, black), then hues
 * spaced by the golden ratio so any number of classes stay distinguishable and stable across runs.
 */

export type RGB = [number, number, number];

const FIXED: RGB[] = [
  [0, 0, 0], // 0: background
  [230, 25, 75], // red
  [60, 180, 75], // green
  [0, 130, 200], // blue
  [255, 225, 25], // yellow
  [245, 130, 48], // orange
  [145, 30, 180], // purple
  [70, 240, 240], // cyan
  [240, 50, 230], // magenta
  [128, 128, 0], // olive
];

const GOLDEN = 0.618033988749895;

/** The colour of class `k` (any non-negative integer). */
export function classColour(k: number): RGB {
  if (k < FIXED.length) return [...FIXED[k]!];
  return hsvToRgb(((k - FIXED.length) * GOLDEN + 0.1) % 1, 0.75, 0.95);
}

/** Colours for classes 0..n-1. */
export function makePalette(n: number): RGB[] {
  return Array.from({ length: n }, (_, k) => classColour(k));
}

export function hsvToRgb(h: number, s: number, v: number): RGB {
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  const [r, g, b] = [
    [v, t, p],
    [q, v, p],
    [p, v, t],
    [p, q, v],
    [t, p, v],
    [v, p, q],
  ][i % 6]!;
  return [Math.round(r! * 255), Math.round(g! * 255), Math.round(b! * 255)];
}

/** `#rrggbb` for SVG. */
export function hex([r, g, b]: RGB): string {
  return `#${[r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

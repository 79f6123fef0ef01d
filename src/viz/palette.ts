/** The class palette lives in core/palette.ts; this re-export keeps `viz/palette.ts` importers (infer) working. */
export { classColour, hex, hsvToRgb, makePalette, type RGB } from '../core/palette.ts';

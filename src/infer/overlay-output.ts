/**
 * The overlay PNG of a whole-slide run: the label overview (built band by band while the labels are read back)
 * painted over the slide's thumbnail in the class colours.
 */
import { classColour } from '../core/palette.ts';
import type { Slide } from '../slide/types.ts';
import { overlay } from '../viz/masks.ts';
import { writePNG } from '../viz/png.ts';
import { LabelOverview } from './label-overview.ts';
import type { SlideOutput } from './slide-output.ts';

export interface OverlayOutputOptions {
  /** The .png written. */
  path: string;
  /** Label grid size. */
  width: number;
  height: number;
  /** Longest side of the label overview. */
  overviewSize: number;
  /** Number of classes (label values 1 … classes). */
  classes: number;
  /** Class names by class index (label value − 1). */
  classNames: readonly string[];
}

/** Longest side of the slide thumbnail the labels are painted on. */
const THUMBNAIL_SIZE = 1024;

export class OverlayOutput implements SlideOutput<string> {
  readonly #slide: Slide;
  readonly #o: OverlayOutputOptions;
  readonly #overview: LabelOverview;

  constructor(slide: Slide, o: OverlayOutputOptions) {
    this.#slide = slide;
    this.#o = o;
    this.#overview = new LabelOverview(o.width, o.height, o.overviewSize);
  }

  band(labels: Uint8Array, y0: number, rows: number): undefined {
    return this.#overview.band(labels, y0, rows);
  }

  /** Writes the PNG; returns its path. */
  async finish(): Promise<string> {
    const { path, classes, classNames } = this.#o;
    const ov = this.#overview;
    const thumb = await this.#slide.thumbnail(THUMBNAIL_SIZE);
    const small = nearest(ov.mask, ov.width, ov.height, thumb.width, thumb.height);
    const palette = Array.from({ length: classes + 1 }, (_, k) => classColour(k));
    await writePNG(
      path,
      overlay(thumb, { data: small, width: thumb.width, height: thumb.height }, palette, 0.45, {
        // 0 = not analysed; a class named background stays unpainted so the tissue shows through.
        skip: [0, ...classNames.flatMap((n, c) => (/^(background|bg)$/i.test(n) ? [c + 1] : []))],
      }),
    );
    return path;
  }
}

/** Nearest-neighbour resize of a label map. */
function nearest(src: Uint8Array, sw: number, sh: number, dw: number, dh: number): Uint8Array {
  const out = new Uint8Array(dw * dh);
  for (let y = 0; y < dh; y++) {
    const sy = Math.min(sh - 1, Math.floor(((y + 0.5) * sh) / dh));
    for (let x = 0; x < dw; x++)
      out[y * dw + x] = src[sy * sw + Math.min(sw - 1, Math.floor(((x + 0.5) * sw) / dw))]!;
  }
  return out;
}

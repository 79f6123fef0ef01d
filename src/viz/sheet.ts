/** A contact sheet: images side by side in a grid, for looking at many patches or predictions at once. */
import { blit } from './legend.ts';
import { type PixelImage, type RGBAImage, toRGBA } from './types.ts';

export interface ContactSheetOptions {
  /** Pixels between cells and around the sheet; default 4. */
  gap?: number;
  /** Background colour RGBA; default white. */
  background?: [number, number, number, number];
}

/** Lays `images` out row by row in `cols` columns; each cell is as large as the largest image. */
export function contactSheet(
  images: PixelImage[],
  cols: number,
  options: ContactSheetOptions = {},
): RGBAImage {
  if (images.length === 0) throw new RangeError('contactSheet: no images');
  if (!Number.isInteger(cols) || cols < 1)
    throw new RangeError(`contactSheet: cols must be >= 1, got ${cols}`);
  const gap = options.gap ?? 4;
  const rgba = images.map((img, i) => toRGBA(img, `image ${i}`));
  const cellW = Math.max(...rgba.map((i) => i.width));
  const cellH = Math.max(...rgba.map((i) => i.height));
  const columns = Math.min(cols, rgba.length);
  const rows = Math.ceil(rgba.length / columns);
  const width = columns * cellW + (columns + 1) * gap;
  const height = rows * cellH + (rows + 1) * gap;
  const data = new Uint8Array(width * height * 4);
  const bg = options.background ?? [255, 255, 255, 255];
  for (let i = 0; i < width * height; i++) data.set(bg, i * 4);
  rgba.forEach((img, i) => {
    const x = gap + (i % columns) * (cellW + gap);
    const y = gap + Math.floor(i / columns) * (cellH + gap);
    blit(data, width, img, x, y);
  });
  return { data, width, height };
}

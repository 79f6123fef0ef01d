/** A legend panel (colour swatch + class name per row) placed to the right of an image. */
import { classColour, hex, type RGB } from '../core/palette.ts';
import { escapeXml, FONT, renderSvg } from './svg.ts';
import { type PixelImage, type RGBAImage, toRGBA } from './types.ts';

export interface LegendEntry {
  name: string;
  colour: RGB;
}

export const LEGEND_ROW = 18;
export const LEGEND_SWATCH = 12;
export const LEGEND_PAD = 8;

/** Renders the legend panel alone (white background). */
export async function renderLegend(entries: LegendEntry[]): Promise<RGBAImage> {
  const longest = Math.max(1, ...entries.map((e) => e.name.length));
  const width = Math.ceil(LEGEND_PAD * 2 + LEGEND_SWATCH + 6 + longest * 7.5);
  const height = LEGEND_PAD * 2 + entries.length * LEGEND_ROW;
  const rows = entries.map((e, i) => {
    const y = LEGEND_PAD + i * LEGEND_ROW + (LEGEND_ROW - LEGEND_SWATCH) / 2;
    return (
      `<rect x="${LEGEND_PAD}" y="${y}" width="${LEGEND_SWATCH}" height="${LEGEND_SWATCH}" fill="${hex(e.colour)}" stroke="#444" stroke-width="1" shape-rendering="crispEdges"/>` +
      `<text x="${LEGEND_PAD + LEGEND_SWATCH + 6}" y="${y + LEGEND_SWATCH - 1}" font-family="${FONT}" font-size="12" fill="#111">${escapeXml(e.name)}</text>`
    );
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#fff"/>${rows.join('')}</svg>`;
  return renderSvg(svg);
}

/** The image with a legend panel appended on its right (white where nothing is drawn). */
export async function withLegend(image: PixelImage, entries: LegendEntry[]): Promise<RGBAImage> {
  const base = toRGBA(image);
  const panel = await renderLegend(entries);
  const width = base.width + panel.width;
  const height = Math.max(base.height, panel.height);
  const data = new Uint8Array(width * height * 4).fill(255);
  blit(data, width, base, 0, 0);
  blit(data, width, panel, base.width, 0);
  return { data, width, height };
}

/** Copies `src` into an RGBA canvas of row length `width` at (x, y). */
export function blit(dst: Uint8Array, width: number, src: RGBAImage, x: number, y: number): void {
  for (let row = 0; row < src.height; row++) {
    const from = row * src.width * 4;
    dst.set(src.data.subarray(from, from + src.width * 4), ((y + row) * width + x) * 4);
  }
}

/**
 * Legend rows for classes named by `labels` (Hugging Face `id2label`: { "0": "background", ... } or a list),
 * restricted to `present` classes when given, in class order.
 */
export function legendEntries(
  labels: Record<string, string> | string[],
  palette?: RGB[],
  present?: Iterable<number>,
): LegendEntry[] {
  const names = Array.isArray(labels)
    ? labels.map((name, id) => [id, name] as const)
    : Object.entries(labels).map(([id, name]) => [Number(id), name] as const);
  const keep = present ? new Set(present) : null;
  return names
    .filter(([id]) => Number.isInteger(id) && (!keep || keep.has(id)))
    .sort((a, b) => a[0] - b[0])
    .map(([id, name]) => ({ name: `${id}: ${name}`, colour: palette?.[id] ?? classColour(id) }));
}

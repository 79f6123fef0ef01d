/**
 * Line charts of named series (training loss, learning rate, validation metrics) as PNG: axes with "nice"
 * ticks, grid, axis labels, title and a legend. Drawn as SVG and rendered by libvips.
 */
import { writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import { classColour, hex, type RGB } from '../core/palette.ts';
import { escapeXml, FONT } from './svg.ts';

export interface Series {
  name: string;
  y: ArrayLike<number>;
  /** x of each point; default 0, 1, 2... (NaN/Infinity points are left out, breaking the line). */
  x?: ArrayLike<number>;
  colour?: RGB;
}

export interface PlotOptions {
  width?: number;
  height?: number;
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Logarithmic y axis (points <= 0 are left out). */
  logY?: boolean;
  /** Also write the PNG there. */
  path?: string;
}

/** The plot area inside the picture: margins for ticks, labels and title. */
export const MARGIN = { left: 64, right: 16, top: 32, bottom: 48 };

/** About `count` round tick values (1, 2, 5 × 10^k steps) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  return ticks;
}

function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e5 || a < 1e-3 ? v.toExponential(1) : String(Number(v.toPrecision(4)));
}

/** Renders the chart; returns PNG bytes. */
export async function plotCurves(series: Series[], options: PlotOptions = {}): Promise<Buffer> {
  const width = options.width ?? 640;
  const height = options.height ?? 400;
  if (series.length === 0) throw new RangeError('plotCurves: no series');
  const fy = options.logY ? Math.log10 : (v: number) => v;
  const points = series.map((s) =>
    Array.from(s.y, (y, i) => [s.x ? s.x[i]! : i, fy(y)] as [number, number]).filter(
      ([x, y]) => Number.isFinite(x) && Number.isFinite(y),
    ),
  );
  const all = points.flat();
  if (all.length === 0) throw new RangeError('plotCurves: no finite points to draw');
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - (Math.abs(y0) || 1) * 0.1, y1 + (Math.abs(y1) || 1) * 0.1];
  else [y0, y1] = [y0 - (y1 - y0) * 0.05, y1 + (y1 - y0) * 0.05];

  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const px = (x: number) => MARGIN.left + ((x - x0) / (x1 - x0)) * plotW;
  const py = (y: number) => MARGIN.top + (1 - (y - y0) / (y1 - y0)) * plotH;
  const parts: string[] = [`<rect width="100%" height="100%" fill="#fff"/>`];
  const text = (x: number, y: number, s: string, attrs = '', size = 11) =>
    `<text x="${x}" y="${y}" font-family="${FONT}" font-size="${size}" fill="#222" ${attrs}>${escapeXml(s)}</text>`;

  for (const t of niceTicks(x0, x1)) {
    const x = px(t).toFixed(1);
    parts.push(
      `<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${MARGIN.top + plotH}" stroke="#e6e6e6" shape-rendering="crispEdges"/>`,
    );
    parts.push(text(px(t), MARGIN.top + plotH + 15, formatTick(t), 'text-anchor="middle"'));
  }
  const yTicks = options.logY
    ? niceTicks(Math.ceil(y0), Math.floor(y1), Math.max(1, Math.floor(y1) - Math.ceil(y0))).filter(
        Number.isInteger,
      )
    : niceTicks(y0, y1);
  for (const t of yTicks) {
    const y = py(t).toFixed(1);
    parts.push(
      `<line x1="${MARGIN.left}" y1="${y}" x2="${MARGIN.left + plotW}" y2="${y}" stroke="#e6e6e6" shape-rendering="crispEdges"/>`,
    );
    const label = options.logY ? formatTick(10 ** t) : formatTick(t);
    parts.push(text(MARGIN.left - 6, py(t) + 4, label, 'text-anchor="end"'));
  }
  parts.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444" shape-rendering="crispEdges"/>`,
  );

  series.forEach((s, k) => {
    const colour = hex(s.colour ?? classColour(k + 1));
    // Break the line where points were left out (non-finite values).
    const segments: string[][] = [[]];
    Array.from(s.y, (y, i) => [s.x ? s.x[i]! : i, fy(y)]).forEach(([x, y]) => {
      if (Number.isFinite(x) && Number.isFinite(y))
        segments.at(-1)!.push(`${px(x!).toFixed(2)},${py(y!).toFixed(2)}`);
      else if (segments.at(-1)!.length > 0) segments.push([]);
    });
    for (const seg of segments) {
      if (seg.length === 1) {
        const [cx, cy] = seg[0]!.split(',');
        parts.push(`<circle cx="${cx}" cy="${cy}" r="2.5" fill="${colour}"/>`);
      } else if (seg.length > 1) {
        parts.push(
          `<polyline points="${seg.join(' ')}" fill="none" stroke="${colour}" stroke-width="2" stroke-linejoin="round"/>`,
        );
      }
    }
  });

  // Legend, top-right inside the plot area.
  const longest = Math.max(...series.map((s) => s.name.length));
  const lw = 30 + longest * 6.5;
  const lx = MARGIN.left + plotW - lw - 6;
  parts.push(
    `<rect x="${lx}" y="${MARGIN.top + 6}" width="${lw}" height="${series.length * 16 + 6}" fill="#fff" fill-opacity="0.85" stroke="#bbb"/>`,
  );
  series.forEach((s, k) => {
    const y = MARGIN.top + 6 + 11 + k * 16;
    const colour = hex(s.colour ?? classColour(k + 1));
    parts.push(
      `<line x1="${lx + 6}" y1="${y - 4}" x2="${lx + 22}" y2="${y - 4}" stroke="${colour}" stroke-width="3"/>`,
    );
    parts.push(text(lx + 26, y, s.name));
  });

  if (options.title) parts.push(text(width / 2, 20, options.title, 'text-anchor="middle"', 14));
  if (options.xLabel)
    parts.push(text(MARGIN.left + plotW / 2, height - 8, options.xLabel, 'text-anchor="middle"'));
  if (options.yLabel) {
    const cy = MARGIN.top + plotH / 2;
    parts.push(text(14, cy, options.yLabel, `text-anchor="middle" transform="rotate(-90 14 ${cy})"`));
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
  const png = await sharp(Buffer.from(svg)).png().toBuffer();
  if (options.path) await writeFile(options.path, png);
  return png;
}

/**
 * A bar chart of one metric across variants: the mean over seeds as a bar, ± one standard deviation as an error bar
 * and every seed's value as a dot, so seed-to-seed noise is visible next to the differences. SVG → PNG via libvips.
 */

import { classColour, hex } from '../core/palette.ts';
import { niceTicks } from '../viz/chart.ts';
import { encodePNG } from '../viz/png.ts';
import { escapeXml, FONT, renderSvg } from '../viz/svg.ts';

export interface BarGroup {
  name: string;
  values: number[];
}

export async function barChart(groups: BarGroup[], title: string): Promise<Buffer> {
  if (groups.length === 0) throw new RangeError('barChart: no groups');
  const width = Math.max(360, 90 * groups.length + 100);
  const height = 360;
  const m = { left: 64, right: 16, top: 52, bottom: 64 };
  const all = groups.flatMap((g) => g.values).filter(Number.isFinite);
  const means = groups.map((g) =>
    g.values.length ? g.values.reduce((a, b) => a + b, 0) / g.values.length : NaN,
  );
  const sds = groups.map((g, i) =>
    g.values.length > 1
      ? Math.sqrt(g.values.reduce((a, b) => a + (b - means[i]!) ** 2, 0) / (g.values.length - 1))
      : 0,
  );
  const hi = Math.max(...all, ...means.map((v, i) => v + sds[i]!).filter(Number.isFinite), 0);
  const lo = Math.min(0, ...all);
  const ticks = niceTicks(lo, hi > lo ? hi : lo + 1);
  const top = Math.max(hi, ticks.at(-1)!);
  const bottom = Math.min(lo, ticks[0]!);
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const y = (v: number) => m.top + plotH * (1 - (v - bottom) / (top - bottom || 1));
  const slot = plotW / groups.length;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="${FONT}" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
  ];
  for (const t of ticks) {
    parts.push(
      `<line x1="${m.left}" x2="${width - m.right}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/>`,
      `<text x="${m.left - 6}" y="${y(t) + 4}" text-anchor="end">${Number(t.toPrecision(4))}</text>`,
    );
  }
  groups.forEach((g, i) => {
    const cx = m.left + slot * (i + 0.5);
    const bw = Math.min(60, slot * 0.6);
    const colour = hex(classColour(i + 1));
    if (Number.isFinite(means[i])) {
      const y0 = y(Math.max(0, bottom));
      const y1 = y(means[i]!);
      parts.push(
        `<rect x="${cx - bw / 2}" y="${Math.min(y0, y1)}" width="${bw}" height="${Math.abs(y0 - y1)}" fill="${colour}" fill-opacity="0.75"/>`,
      );
      if (sds[i]! > 0) {
        const a = y(means[i]! - sds[i]!);
        const b = y(means[i]! + sds[i]!);
        parts.push(
          `<line x1="${cx}" x2="${cx}" y1="${a}" y2="${b}" stroke="black"/>`,
          `<line x1="${cx - 8}" x2="${cx + 8}" y1="${a}" y2="${a}" stroke="black"/>`,
          `<line x1="${cx - 8}" x2="${cx + 8}" y1="${b}" y2="${b}" stroke="black"/>`,
        );
      }
      parts.push(
        `<text x="${cx}" y="${Math.min(y0, y1, y(means[i]! + sds[i]!), ...g.values.map(y)) - 6}" text-anchor="middle" font-size="10">${means[i]!.toFixed(3)}</text>`,
      );
    }
    g.values.forEach((v, j) => {
      const dx = g.values.length > 1 ? (j / (g.values.length - 1) - 0.5) * bw * 0.6 : 0;
      parts.push(`<circle cx="${cx + dx}" cy="${y(v)}" r="3" fill="black"/>`);
    });
    parts.push(
      `<text x="${cx}" y="${height - m.bottom + 16}" text-anchor="middle">${escapeXml(g.name)}</text>`,
    );
  });
  parts.push(
    `<line x1="${m.left}" x2="${width - m.right}" y1="${y(Math.max(0, bottom))}" y2="${y(Math.max(0, bottom))}" stroke="black"/>`,
    `<text x="${width / 2}" y="${height - 12}" text-anchor="middle" font-size="10">bars: mean over seeds; whiskers: ± 1 sd; dots: seeds</text>`,
    '</svg>',
  );
  return encodePNG(await renderSvg(parts.join('')));
}

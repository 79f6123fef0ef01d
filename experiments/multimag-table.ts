/**
 * Study (e): every trained model of a sweep evaluated at several resolutions (`eval-mpp<M>.json`, written by the
 * README's `slideseg evaluate … --metrics` loop) → a markdown table (variant × evaluation mpp, mean ± sample sd over
 * seeds, one column per metric) and a bar chart per metric with a bar for each variant at each mpp.
 *
 *   node --import tsx experiments/multimag-table.ts experiments/runs/e-multimag [--out DIR]
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { barChart } from '../src/sweep/bars.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { out: { type: 'string' } } });
if (positionals.length !== 1) {
  console.error('usage: node --import tsx experiments/multimag-table.ts SWEEP_DIR [--out DIR]');
  process.exit(2);
}
const sweep = resolve(positionals[0]);
const out = resolve(values.out ?? join(sweep, 'pictures'));
const METRICS = ['mDice', 'mIoU', 'fgDice'] as const;

interface Evaluation {
  mDice: number;
  mIoU: number;
  classes: { dice: number | null }[];
}

/** variant → mpp → metric → one value per seed */
const table = new Map<string, Map<string, Record<string, number[]>>>();
for (const variant of readdirSync(join(sweep, 'runs')).sort()) {
  for (const seed of readdirSync(join(sweep, 'runs', variant)).filter((s) => s.startsWith('seed-'))) {
    const dir = join(sweep, 'runs', variant, seed);
    for (const file of readdirSync(dir).filter((f) => /^eval-mpp[\d.]+\.json$/.test(f))) {
      const mpp = file.slice('eval-mpp'.length, -'.json'.length);
      const e = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Evaluation;
      const byMpp = table.get(variant) ?? new Map();
      table.set(variant, byMpp);
      const cell = byMpp.get(mpp) ?? { mDice: [], mIoU: [], fgDice: [] };
      byMpp.set(mpp, cell);
      cell.mDice.push(e.mDice);
      cell.mIoU.push(e.mIoU);
      cell.fgDice.push(e.classes[1]?.dice ?? Number.NaN);
    }
  }
}
if (table.size === 0) {
  console.error(`${sweep}: no runs/<variant>/seed-*/eval-mpp*.json found`);
  process.exit(1);
}

function meanSd(xs: number[]): string {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (xs.length < 2) return m.toFixed(4);
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
  return `${m.toFixed(4)} ± ${sd.toFixed(4)}`;
}

const mpps = [...new Set([...table.values()].flatMap((m) => [...m.keys()]))].sort(
  (a, b) => Number(a) - Number(b),
);
const lines = [
  `| variant | eval µm/px | seeds | ${METRICS.join(' | ')} |`,
  `|---|---:|---:|${METRICS.map(() => '---:').join('|')}|`,
];
for (const [variant, byMpp] of table) {
  for (const mpp of mpps) {
    const cell = byMpp.get(mpp);
    if (!cell) continue;
    lines.push(
      `| ${variant} | ${mpp} | ${cell.mDice.length} | ${METRICS.map((k) => meanSd(cell[k])).join(' | ')} |`,
    );
  }
}
console.log(lines.join('\n'));
for (const metric of METRICS) {
  // Grouped by evaluation resolution, so the variants stand side by side; short labels fit under the bars.
  const groups = mpps.flatMap((mpp) =>
    [...table]
      .filter(([, byMpp]) => byMpp.has(mpp))
      .map(([variant, byMpp]) => ({
        name: `${variant.split('-')[0]} @${mpp}`,
        values: byMpp.get(mpp)![metric],
      })),
  );
  const file = join(out, `eval-by-mpp-${metric}.png`);
  writeFileSync(file, await barChart(groups, `${metric} by evaluation resolution (µm/px)`));
  console.error(`wrote ${file}`);
}

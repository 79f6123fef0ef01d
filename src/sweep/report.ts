/** The sweep's outputs: sweep.csv, report.md with the mean ± sd table, a bar chart per metric and all curves. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { classColour } from '../core/palette.ts';
import { plotCurves, type Series } from '../viz/chart.ts';
import { barChart } from './bars.ts';
import type { SweepSpec } from './file.ts';
import { metricColumns, type RunResult, summarise, sweepCsv } from './results.ts';

export interface SweepReportFiles {
  csv: string;
  report: string;
  pictures: string[];
}

function cell(s: { mean: number; sd: number | null } | null): string {
  if (!s) return '–';
  return s.sd == null ? s.mean.toFixed(4) : `${s.mean.toFixed(4)} ± ${s.sd.toFixed(4)}`;
}

export async function writeSweepReport(
  spec: SweepSpec,
  out: string,
  results: RunResult[],
  curveMetric: string,
): Promise<SweepReportFiles> {
  await mkdir(join(out, 'pictures'), { recursive: true });
  const csvPath = join(out, 'sweep.csv');
  await writeFile(csvPath, sweepCsv(results));
  const summaries = summarise(results);
  const cols = metricColumns(results);
  const pictures: string[] = [];
  // A bar chart per best_ metric (the final_ values are in the table).
  for (const c of cols.filter((k) => k.startsWith('best_'))) {
    const groups = summaries.map((s) => ({
      name: s.variant,
      values: results
        .filter((r) => r.variant === s.variant)
        .map((r) => r.metrics[c])
        .filter((v): v is number => typeof v === 'number'),
    }));
    if (groups.every((g) => g.values.length === 0)) continue;
    const file = join(out, 'pictures', `${c}.png`);
    await writeFile(
      file,
      await barChart(groups, `${c.replace('best_', 'best validation ')} (${spec.seeds.length} seeds)`),
    );
    pictures.push(file);
  }
  // Every run's validation curve of one metric, coloured by variant.
  const variants = [...new Set(results.map((r) => r.variant))];
  const series: Series[] = results
    .filter((r) => r.curves[curveMetric]?.x.length)
    .map((r) => ({
      name: `${r.variant} seed ${r.seed}`,
      x: r.curves[curveMetric]!.x,
      y: r.curves[curveMetric]!.y,
      colour: classColour(variants.indexOf(r.variant) + 1),
    }));
  const curvesFile = join(out, 'pictures', `val-curves-${curveMetric}.png`);
  if (series.length > 0) {
    await writeFile(
      curvesFile,
      await plotCurves(series, {
        title: `validation ${curveMetric}`,
        xLabel: 'step',
        yLabel: curveMetric,
        width: 760,
        height: 440,
      }),
    );
    pictures.push(curvesFile);
  }
  const shown = cols.filter((c) => c.startsWith('best_') || c === `final_${curveMetric}`);
  const lines = [
    `# Sweep: ${spec.source}`,
    '',
    `Base config \`${spec.base}\`${spec.data ? `, data \`${spec.data}\`` : ''}; seeds ${spec.seeds.join(', ')}.`,
    "Mean ± sample standard deviation over seeds of each run's best validation value (and the final one of " +
      `${curveMetric}); a difference smaller than the standard deviations is within seed-to-seed noise.`,
    '',
    `| variant | runs | ${shown.join(' | ')} |`,
    `|---|---|${shown.map(() => '---').join('|')}|`,
    ...summaries.map(
      (s) => `| ${s.variant} | ${s.n} | ${shown.map((c) => cell(s.stats[c] ?? null)).join(' | ')} |`,
    ),
    '',
    'Variants:',
    '',
    ...spec.variants.map(
      (v) =>
        `- **${v.name}**: ${v.overrides.length === 0 ? 'the base config' : v.overrides.map(([k, val]) => `\`${k}: ${JSON.stringify(val)}\``).join(', ')}`,
    ),
    '',
    ...pictures.map((p) => `![${relative(out, p)}](${relative(out, p)})`),
    '',
    `Every run: \`sweep.csv\` (one row per variant × seed); run folders under \`runs/<variant>/seed-<seed>/\`.`,
    '',
  ];
  const reportPath = join(out, 'report.md');
  await writeFile(reportPath, lines.join('\n'));
  return { csv: csvPath, report: reportPath, pictures };
}

/**
 * What a run leaves for people to look at: metrics.csv beside metrics.jsonl, curves as PNG (loss, learning
 * rate, validation metrics) and validation overlays (TP/FP/FN colours over the image).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NamedSample } from '../patching/pairs.ts';
import * as viz from '../viz/index.ts';
import type { LogRecord } from './trainer.ts';

function csv(history: LogRecord[]): string {
  const cols = ['type', 'step'];
  for (const r of history) {
    for (const [k, v] of Object.entries(r))
      if (!cols.includes(k) && (typeof v === 'number' || v === null)) cols.push(k);
  }
  const lines = [cols.join(',')];
  for (const r of history) lines.push(cols.map((c) => (r[c] == null ? '' : String(r[c]))).join(','));
  return `${lines.join('\n')}\n`;
}

function series(history: LogRecord[], type: 'train' | 'val', key: string): viz.Series {
  const rows = history.filter((r) => r.type === type && typeof r[key] === 'number');
  return { name: key, x: rows.map((r) => r.step), y: rows.map((r) => r[key] as number) };
}

export async function writeRunPictures(
  out: string,
  history: LogRecord[],
  previews: { sample: NamedSample; pred: Uint8Array }[],
  step: number,
  numLabels: number,
): Promise<void> {
  await writeFile(join(out, 'metrics.csv'), csv(history));
  await mkdir(join(out, 'curves'), { recursive: true });
  const charts: [string, viz.Series[], string][] = [
    ['loss', [series(history, 'train', 'loss')], 'training loss'],
    ['lr', [series(history, 'train', 'lr')], 'learning rate'],
    ['val', ['mIoU', 'mDice', 'aAcc', 'mcc'].map((k) => series(history, 'val', k)), 'validation'],
  ];
  for (const [file, all, title] of charts) {
    const s = all.filter((x) => x.y.length > 0);
    if (s.length === 0) continue;
    await writeFile(
      join(out, 'curves', `${file}.png`),
      await viz.plotCurves(s, { title, xLabel: 'step', yLabel: title }),
    );
  }
  if (previews.length > 0) {
    await mkdir(join(out, 'val'), { recursive: true });
    for (const { sample, pred } of previews) {
      const label = { data: pred, width: sample.width, height: sample.height };
      const target = { data: sample.mask, width: sample.width, height: sample.height };
      const img = { data: sample.image, width: sample.width, height: sample.height };
      const errors = viz.errorOverlay(img, label, target, 0.5);
      await viz.writePNG(
        join(out, 'val', `step-${String(step).padStart(7, '0')}-${sample.name}.png`),
        errors,
      );
    }
  }
  void numLabels;
}

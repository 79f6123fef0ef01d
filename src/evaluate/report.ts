/** The Markdown report of an `evaluate` run: data-set scores, a per-class table and per-image scores. */
import type { EvaluationResult } from './segmentation.ts';

const fmt = (v: number | null | undefined, digits = 4) =>
  v == null || Number.isNaN(v) ? '—' : v.toFixed(digits);

export function evaluationMarkdown(r: EvaluationResult): string {
  const lines: string[] = [];
  lines.push(`# Evaluation of ${r.model}`, '');
  const what = r.data ? `${r.images} slides of ${r.data} (${r.patches} patches)` : `${r.images} images`;
  lines.push(
    `${what}, ${r.pixels.toLocaleString('en')} pixels scored (ignore index ${r.ignoreIndex}), ` +
      `sliding window ${r.tile}px with ${r.overlap}px overlap${r.tta !== 'none' ? `, test-time augmentation ${r.tta}` : ''}.`,
    '',
  );
  lines.push('| metric | value |', '|---|---:|');
  lines.push(`| mIoU | ${fmt(r.mIoU)} |`, `| mDice | ${fmt(r.mDice)} |`, `| aAcc | ${fmt(r.aAcc)} |`);
  if (r.mcc != null) lines.push(`| MCC | ${fmt(r.mcc)} |`);
  lines.push('', '## Per class', '');
  lines.push(
    '| class | name | IoU | Dice | precision | recall | pixels |',
    '|---:|---|---:|---:|---:|---:|---:|',
  );
  for (const c of r.classes) {
    lines.push(
      `| ${c.index} | ${c.name} | ${fmt(c.iou)} | ${fmt(c.dice)} | ${fmt(c.precision)} | ${fmt(c.recall)} | ${c.support} |`,
    );
  }
  const unit = r.data ? 'slide' : 'image';
  lines.push('', `## Per ${unit} (worst first, by foreground Dice)`, '');
  lines.push(`| ${unit} | Dice | mIoU | mDice | aAcc |`, '|---|---:|---:|---:|---:|');
  for (const s of [...r.perImage].sort((a, b) => a.dice - b.dice || a.name.localeCompare(b.name))) {
    lines.push(`| ${s.name} | ${fmt(s.dice)} | ${fmt(s.mIoU)} | ${fmt(s.mDice)} | ${fmt(s.aAcc)} |`);
  }
  if (r.overlayFiles.length > 0) {
    lines.push('', '## Overlays', '', 'TP green, FP red, FN blue, wrong foreground class orange.', '');
    for (const f of r.overlayFiles) lines.push(`- ${f}`);
  }
  return `${lines.join('\n')}\n`;
}

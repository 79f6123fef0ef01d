/**
 * `slideseg demo`: the whole job on the bundled CC0 slide, in a few minutes on two cores and without network —
 * tissue detection, online patches with weak nuclei labels, training a small SegFormer, whole-slide inference,
 * and a short report with pictures.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inferSlide } from '../infer/slide-infer.ts';
import { foregroundRandomSampler, patchStream } from '../patching/index.ts';
import type { NamedSample } from '../patching/pairs.ts';
import { writeContactSheet, writeMaskPng, writeTissueOverlayPng } from '../patching/preview.ts';
import { detectTissueWithView } from '../patching/tissue.ts';
import { openSlide } from '../slide/index.ts';
import { DEFAULTS, type TrainConfig } from '../train/config.ts';
import { train } from '../train/trainer.ts';
import { nucleiThreshold, weakNucleiMask } from './weak-labels.ts';

export const BUNDLED_SLIDE = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../samples/cmu-1-small-region.svs',
);

export interface DemoOptions {
  slide?: string;
  out: string;
  /** Training steps (default 150). */
  steps?: number;
  /** Patches streamed for training and validation (default 96, of which a sixth validate). */
  patches?: number;
  seed?: number;
  quiet?: boolean;
}

export interface DemoResult {
  report: string;
  valDice: number | null;
  nucleiAreaUm2: number;
  seconds: number;
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const t0 = performance.now();
  const log = (m: string) => {
    if (!o.quiet) process.stderr.write(`${m}\n`);
  };
  const slidePath = o.slide ?? BUNDLED_SLIDE;
  const seed = o.seed ?? 0;
  const out = o.out;
  await mkdir(out, { recursive: true });
  const timings: Record<string, number> = {};
  const lap = (name: string, since: number) => {
    timings[name] = (performance.now() - since) / 1000;
  };

  // 1. Tissue
  let t = performance.now();
  const slide = await openSlide(slidePath);
  const { tissue, view } = await detectTissueWithView(slide);
  await writeMaskPng(tissue, join(out, 'tissue-mask.png'));
  await writeTissueOverlayPng(view, tissue, join(out, 'tissue-overlay.png'));
  const tissueFraction = tissue.mask.reduce((a, b) => a + b, 0) / tissue.mask.length;
  lap('tissue', t);
  log(`tissue: ${(100 * tissueFraction).toFixed(1)}% of the slide (${timings.tissue!.toFixed(1)} s)`);

  // 2. Weak labels: one haematoxylin threshold for the whole slide
  const threshold = nucleiThreshold(view, tissue.mask);
  log(`weak labels: nuclei where haematoxylin density > ${threshold.toFixed(3)} (Otsu on tissue pixels)`);

  // 3. Online patches, never written to disk
  t = performance.now();
  const count = o.patches ?? 96;
  const size = 128;
  const { samples, shown } = await demoPatches(slide, tissue, threshold, { size, count, seed });
  await writeContactSheet(shown, join(out, 'patches.png'), 8, 96);
  lap('patches', t);
  log(`patches: ${samples.length} of ${size}×${size} px at level 0 (${timings.patches!.toFixed(1)} s)`);

  // 4. Train a small SegFormer
  t = performance.now();
  const nVal = Math.max(2, Math.round(samples.length / 6));
  const cfg = demoTrainConfig(seed, join(out, 'run'), o.steps ?? 150, size);
  const result = await train(cfg, {
    quiet: o.quiet,
    samples: { train: samples.slice(nVal), val: samples.slice(0, nVal) },
  });
  lap('training', t);
  const valDice = (result.lastVal?.dice as (number | null)[] | undefined)?.[1] ?? null;
  log(
    `training: ${cfg.steps} steps in ${timings.training!.toFixed(0)} s; nucleus Dice vs weak labels ${valDice?.toFixed(3)}`,
  );

  // 5. Whole-slide inference
  t = performance.now();
  await slide.close();
  const summary = await inferSlide(slidePath, {
    model: join(cfg.out, 'model'),
    out: join(out, 'inference'),
    mpp: slide.mpp?.x ?? 0.5,
    tile: 256,
    overlap: 32,
    batch: 4,
    log: o.quiet ? null : undefined,
  });
  lap('inference', t);
  const nucleiAreaUm2 = summary.areas.nucleus?.um2 ?? 0;

  // 6. Report
  const seconds = (performance.now() - t0) / 1000;
  const report = demoReport({
    out,
    slidePath,
    slide,
    tissueFraction,
    samples: samples.length,
    size,
    threshold,
    steps: cfg.steps,
    batchSize: cfg.batchSize,
    valDice,
    summary,
    nucleiAreaUm2,
    timings,
    seconds,
  });
  await writeFile(join(out, 'report.md'), report);
  log(`demo finished in ${seconds.toFixed(0)} s: ${join(out, 'report.md')}`);
  return { report: join(out, 'report.md'), valDice, nucleiAreaUm2, seconds };
}

/** A small SegFormer (MiT-B0 layout at a quarter of the width) trained on the weak labels. */
function demoTrainConfig(seed: number, out: string, steps: number, size: number): TrainConfig {
  return {
    ...DEFAULTS,
    seed,
    out,
    model: {
      preset: 'b0',
      numLabels: 2,
      id2label: { '0': 'background', '1': 'nucleus' },
      overrides: {
        hidden_sizes: [16, 32, 64, 128],
        depths: [1, 1, 1, 1],
        num_attention_heads: [1, 1, 2, 4],
        decoder_hidden_size: 64,
      },
    },
    augment: {
      crop: 96,
      scale: [0.8, 1.25],
      hflip: true,
      vflip: true,
      rot90: true,
      stainSigma: 0.03,
      brightness: 0.05,
    },
    loss: [
      { name: 'dice', weight: 1 },
      { name: 'ce', weight: 1 },
    ],
    optim: { ...DEFAULTS.optim, lr: 2e-3, warmupSteps: 10, clipGradNorm: 1 },
    steps,
    batchSize: 8,
    logEvery: 5,
    valEvery: 50,
    saveEvery: 50,
    val: { tile: size, overlap: 0, overlays: 2 },
  };
}

/** Foreground patches streamed from the slide, each with its weak nuclei mask (nothing written to disk). */
async function demoPatches(
  slide: Parameters<typeof patchStream>[0]['slides'][number],
  tissue: Awaited<ReturnType<typeof detectTissueWithView>>['tissue'],
  threshold: number,
  o: { size: number; count: number; seed: number },
): Promise<{ samples: NamedSample[]; shown: Parameters<typeof writeContactSheet>[0] }> {
  const { size, count, seed } = o;
  const samples: NamedSample[] = [];
  const shown: Parameters<typeof writeContactSheet>[0] = [];
  for await (const p of patchStream({
    slides: [slide],
    sampler: foregroundRandomSampler({ size, level: 0, minTissue: 0.6 }),
    count,
    seed,
    tissueMasks: [tissue],
  })) {
    const mask = weakNucleiMask(p.image, p.width, p.height, threshold);
    samples.push({
      name: `patch-${samples.length}-x${p.x}-y${p.y}`,
      image: p.image,
      mask,
      width: p.width,
      height: p.height,
    });
    if (shown.length < 24) shown.push({ ...p, mask });
  }
  return { samples, shown };
}

/** report.md: what each step did and took, and the pictures. */
function demoReport(r: {
  out: string;
  slidePath: string;
  slide: { levels: readonly { width: number; height: number }[]; mpp: { x: number } | null };
  tissueFraction: number;
  samples: number;
  size: number;
  threshold: number;
  steps: number;
  batchSize: number;
  valDice: number | null;
  summary: Awaited<ReturnType<typeof inferSlide>>;
  nucleiAreaUm2: number;
  timings: Record<string, number>;
  seconds: number;
}): string {
  const {
    out,
    slidePath,
    slide,
    tissueFraction,
    size,
    threshold,
    valDice,
    summary,
    nucleiAreaUm2,
    timings,
    seconds,
  } = r;
  const rel = (p: string) => p.replace(`${out}/`, '');
  return [
    '# slideseg demo',
    '',
    `Slide: \`${slidePath.split('/').pop()}\` (${slide.levels[0]!.width}×${slide.levels[0]!.height} px, ${slide.mpp?.x.toFixed(3)} µm/px)`,
    '',
    '| step | result | seconds |',
    '|---|---|---|',
    `| tissue detection | ${(100 * tissueFraction).toFixed(1)}% tissue | ${timings.tissue!.toFixed(1)} |`,
    `| online patches | ${r.samples} patches of ${size} px, weak nuclei labels (haematoxylin > ${threshold.toFixed(3)}) | ${timings.patches!.toFixed(1)} |`,
    `| training | ${r.steps} steps, batch ${r.batchSize}; validation nucleus Dice vs weak labels ${valDice?.toFixed(3) ?? 'n/a'} | ${timings.training!.toFixed(1)} |`,
    `| inference | ${summary.tiles.computed} tiles; nuclei ${(nucleiAreaUm2 / 1e6).toFixed(3)} mm² | ${timings.inference!.toFixed(1)} |`,
    `| total | | ${seconds.toFixed(1)} |`,
    '',
    'Weak labels: haematoxylin optical density from colour deconvolution (Ruifrok & Johnston), one Otsu threshold',
    'over the tissue of a low-resolution view, 3×3 median filter. The model learns to reproduce them.',
    '',
    '## Pictures',
    '',
    `- tissue: ![tissue](tissue-overlay.png)`,
    `- patches with weak labels: ![patches](patches.png)`,
    `- training curves: ![loss](run/curves/loss.png) ![validation](run/curves/val.png)`,
    `- prediction over the slide: ![overlay](${rel(summary.outputs.overlay)})`,
    '',
    `Outputs: model \`run/model/\`, labels \`${rel(summary.outputs.labels)}\`, polygons \`${rel(summary.outputs.geojson)}\`,`,
    `summary \`${rel(summary.outputs.summary)}\`.`,
    '',
  ].join('\n');
}

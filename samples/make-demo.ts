/**
 * Rebuilds the bundled demo (samples/image.png and samples/segformer-tiny/) with slideseg itself:
 *
 * 1. reads 256x256 views (512x512 level-0 regions halved, ~1 µm/pixel) of the CC0 slide
 *    `cmu-1-small-region.svs` with slideseg's slide reader;
 * 2. labels each pixel by colour (glass background / tissue / the darkest haematoxylin-rich pixels, mostly
 *    nuclei): rough labels, enough for a demo that shows a model learning something visible;
 * 3. trains a tiny SegFormer (hidden sizes 8-16-24-32) on them for a few hundred steps with `slideseg train`'s
 *    trainer, then stores the weights as float16 so the checkpoint stays under 200 KB.
 *
 * Usage: node --import tsx samples/make-demo.ts [path/to/cmu-1-small-region.svs]
 * (default: samples/cmu-1-small-region.svs when bundled, else ../shared/fixtures/slides/ beside the repository)
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { floatToHalf, readSafetensors, type SafeTensor, toFloat32, writeSafetensors } from '../src/io/safetensors.ts';
import { openSlide } from '../src/slide/index.ts';
import { DEFAULTS, type TrainConfig } from '../src/train/config.ts';
import { train } from '../src/train/trainer.ts';
import { writeMaskPNG, writePNG } from '../src/viz/index.ts';

const here = dirname(fileURLToPath(import.meta.url));
const bundled = join(here, 'cmu-1-small-region.svs');
const slidePath =
  process.argv[2] ?? (existsSync(bundled) ? bundled : resolve(here, '../../shared/fixtures/slides/cmu-1-small-region.svs'));
const SIDE = 256;
/** Level-0 top-left corners of the training views; the demo image is the first. */
const VIEWS: [number, number][] = [
  [1000, 1200],
  [800, 1000],
  [1100, 1600],
  [900, 2000],
  [1300, 700],
  [700, 2400],
  [1400, 2200],
  [600, 1500],
  [1200, 1000],
  [500, 2600],
];
const LABELS = { '0': 'background', '1': 'tissue', '2': 'hematoxylin-rich' };

/** RGB view of a 512x512 level-0 region, halved to 256x256. */
async function readView(slide: Awaited<ReturnType<typeof openSlide>>, x: number, y: number): Promise<Uint8Array> {
  const region = await slide.readRegion({ x, y, level: 0, width: 2 * SIDE, height: 2 * SIDE });
  const rgb = await sharp(region.data, { raw: { width: 2 * SIDE, height: 2 * SIDE, channels: 4 } })
    .flatten({ background: '#ffffff' })
    .resize(SIDE, SIDE, { kernel: 'linear' })
    .raw()
    .toBuffer();
  return new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.byteLength);
}

/** Colour rule: bright and grey = glass; very dark and bluish = haematoxylin-rich; the rest = tissue. */
function colourLabels(rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array(rgb.length / 3);
  for (let i = 0; i < out.length; i++) {
    const r = rgb[i * 3]!;
    const g = rgb[i * 3 + 1]!;
    const b = rgb[i * 3 + 2]!;
    const lo = Math.min(r, g, b);
    const hi = Math.max(r, g, b);
    const luma = 0.299 * r + 0.587 * g + 0.114 * b;
    out[i] = lo > 195 && hi - lo < 35 ? 0 : luma < 60 && b >= r * 0.75 ? 2 : 1;
  }
  return out;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'slideseg-demo-'));
  const data = join(work, 'data');
  await mkdir(join(data, 'images'), { recursive: true });
  await mkdir(join(data, 'masks'), { recursive: true });
  const slide = await openSlide(slidePath);
  for (const [i, [x, y]] of VIEWS.entries()) {
    const rgb = await readView(slide, x, y);
    const name = `view${String(i).padStart(2, '0')}`;
    await writePNG(join(data, 'images', `${name}.png`), { data: rgb, width: SIDE, height: SIDE });
    await writeMaskPNG(join(data, 'masks', `${name}.png`), { data: colourLabels(rgb), width: SIDE, height: SIDE });
    if (i === 0) await writePNG(join(here, 'image.png'), { data: rgb, width: SIDE, height: SIDE });
  }
  await slide.close();

  const cfg: TrainConfig = {
    ...DEFAULTS,
    seed: 1,
    out: join(work, 'run'),
    model: {
      preset: 'b0',
      numLabels: 3,
      id2label: LABELS,
      overrides: {
        hidden_sizes: [8, 16, 24, 32],
        depths: [1, 1, 2, 1],
        num_attention_heads: [1, 2, 3, 4],
        decoder_hidden_size: 16,
      },
    },
    // No validation split: the trainer's sliding-window validation assumes 2 labels (tileModelOf reads
    // config.num_labels, which normalised configs drop); the demo is checked by test/predict-samples.test.ts.
    data: { dir: data, valFraction: 0, val: [], ignoreIndex: 255 },
    augment: { crop: 128, scale: [0.75, 1.25], hflip: true, vflip: true, rot90: true, stainSigma: 0.03 },
    optim: { ...DEFAULTS.optim, lr: 2e-3, decoderLrMultiplier: 1, warmupSteps: 20 },
    // One thread: reproducible on any machine (data-parallel workers split batches by core count).
    workers: 1,
    steps: Number(process.env.DEMO_STEPS ?? 400),
    batchSize: 4,
    logEvery: 50,
    valEvery: 200,
    saveEvery: 1000,
    val: { tile: 256, overlap: 0, overlays: 0 },
  };
  const result = await train(cfg, {});
  process.stderr.write(`trained ${result.step} steps; last validation ${JSON.stringify(result.lastVal)}\n`);

  // Float16 weights (the loader widens them back to float32); config and preprocessor copied as saved.
  const model = join(result.out, 'model');
  const target = join(here, 'segformer-tiny');
  await rm(target, { recursive: true, force: true });
  await mkdir(target, { recursive: true });
  const file = await readSafetensors(join(model, 'model.safetensors'));
  const half: [string, SafeTensor][] = [...file.tensors].map(([key, t]) => {
    if (t.dtype !== 'F32') return [key, t];
    const f32 = toFloat32(t, key);
    const u16 = Uint16Array.from(f32, floatToHalf);
    return [key, { dtype: 'F16', shape: t.shape, bytes: new Uint8Array(u16.buffer) }];
  });
  await writeSafetensors(join(target, 'model.safetensors'), half, { format: 'pt' });
  for (const f of ['config.json', 'preprocessor_config.json']) {
    await writeFile(join(target, f), await readFile(join(model, f)));
  }
  await rm(work, { recursive: true, force: true });
  process.stderr.write(`wrote ${target} and ${join(here, 'image.png')}\n`);
}

await main();

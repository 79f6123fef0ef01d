/**
 * Memory is bounded by the tile pipeline, not the slide: the same inference on a 8k×8k and a 16k×16k synthetic
 * pyramidal TIFF (4× the pixels, 4× the tiles) peaks at the same resident memory within a small margin. Each run is a
 * child process, and its peak (VmHWM) is compared with its resident size just before inference starts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { fixture, ROOT } from './fixtures.ts';

const run = promisify(execFile);
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'infer-memory-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A tissue-coloured slide with a gradient (so JPEG tiles are not all identical) at 0.25 µm/px. */
async function syntheticSlide(size: number): Promise<string> {
  const path = join(dir, `synthetic-${size}.tif`);
  const seed = await sharp({
    create: { width: 64, height: 64, channels: 3, background: { r: 210, g: 120, b: 180 } },
  })
    .linear([0.9, 1.1, 0.8], [10, -20, 15])
    .png()
    .toBuffer();
  await sharp(seed)
    .resize(size, size, { kernel: 'cubic' })
    .tiff({
      tile: true,
      tileWidth: 256,
      tileHeight: 256,
      pyramid: true,
      compression: 'jpeg',
      quality: 80,
      xres: 4000,
      yres: 4000,
      resolutionUnit: 'cm',
    })
    .toFile(path);
  return path;
}

const CHILD = `
import { readFileSync } from 'node:fs';
import { inferSlide } from ${JSON.stringify(join(ROOT, 'src/infer/index.ts'))};
const vm = (k) => {
  const line = readFileSync('/proc/self/status', 'utf8').split('\\n').find((l) => l.startsWith(k + ':'));
  return Number.parseInt(line.slice(k.length + 1), 10) * 1024;
};
const [slide, model, out] = process.argv.slice(2);
const base = vm('VmRSS');
const s = await inferSlide(slide, { model, out, mpp: 2, tile: 128, overlap: 16, batch: 4, chunkSize: 256,
  stripeWidth: 512, tissue: 'all', log: null });
console.log(JSON.stringify({ base, peak: vm('VmHWM'), tiles: s.tiles.computed, grid: s.grid }));
`;

async function peakOf(slide: string, tag: string) {
  const script = join(dir, 'child.mts');
  await writeFile(script, CHILD);
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', script, slide, fixture('segformer', 'segformer-tiny'), join(dir, `out-${tag}`)],
    { cwd: ROOT, maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as { base: number; peak: number; tiles: number };
}

test('peak memory does not grow with the slide size', async () => {
  const small = await peakOf(await syntheticSlide(8192), 'small');
  const large = await peakOf(await syntheticSlide(16384), 'large');
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  const growthSmall = small.peak - small.base;
  const growthLarge = large.peak - large.base;
  console.log(
    `8k: ${small.tiles} tiles, +${mib(growthSmall)} MiB; 16k: ${large.tiles} tiles, +${mib(growthLarge)} MiB`,
  );
  assert.ok(large.tiles >= 3.5 * small.tiles, 'the large slide has ~4× the tiles');
  assert.ok(
    growthLarge - growthSmall < 64 * 2 ** 20,
    `peak grew by ${mib(growthLarge - growthSmall)} MiB from 8k to 16k`,
  );
});

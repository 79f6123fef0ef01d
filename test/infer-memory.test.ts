/**
 * Memory is bounded by the tile pipeline, not the slide: the same inference on a 8k×8k and a 16k×16k synthetic
 * pyramidal TIFF (4× the pixels, 4× the tiles) peaks at the same resident memory within a small margin. Each run is a
 * child process; its peak (VmHWM, reset once the first batch is through so start-up noise does not count) is
 * compared with its resident size at that moment.
 *
 * What the child pins down, and why: it collects garbage after every batch (V8 otherwise lets up to ~64 MiB of dead
 * tile buffers pile up before collecting, a bounded slack the 8k run is too short to reach) and decodes in its own
 * thread (a decode worker's heap has the same slack, out of reach of that collection). The overview behind the
 * overlay and the GeoJSON is capped at 512 px so both slides are past the cap; its memory is that cap's, not the
 * slide's. Everything else — accumulators, label writer, reader cache, thumbnail — runs as in production.
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
import { readFileSync, writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { inferSlide } from ${JSON.stringify(join(ROOT, 'src/infer/index.ts'))};
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
const vm = (k) => {
  const line = readFileSync('/proc/self/status', 'utf8').split('\\n').find((l) => l.startsWith(k + ':'));
  return Number.parseInt(line.slice(k.length + 1), 10) * 1024;
};
const [slide, model, out] = process.argv.slice(2);
let base = 0;
const s = await inferSlide(slide, { model, out, mpp: 2, tile: 128, overlap: 16, batch: 4, chunkSize: 256,
  stripeWidth: 512, tissue: 'all', decodeWorkers: 0, overviewSize: 512, log: null,
  onProgress: () => {
    gc();
    if (base) return;
    writeFileSync('/proc/self/clear_refs', '5'); // VmHWM := VmRSS from here on
    base = vm('VmRSS');
  } });
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
    growthLarge - growthSmall < 32 * 2 ** 20,
    `peak grew by ${mib(growthLarge - growthSmall)} MiB from 8k to 16k`,
  );
});

/**
 * Cold random reads: 256x256 level-0 regions at random positions, against OpenSlide (python3-openslide, Debian) on the
 * same positions in the same run. Every mode opens the slide afresh with a 32 MiB block cache (OpenSlide's default),
 * reads `--warmup` regions, then times `--reads` others: on a large slide nearly every tile is a cache miss.
 *
 *   node --import tsx bench/slide-read.ts [--slide PATH] [--reads 600] [--warmup 20] [--concurrency 8] [--workers 2]
 *                                         [--json]
 *
 * The large slide of issue 14 (40000x40000 px, 256-px JPEG tiles, ~24k level-0 tiles, 1.1 GB):
 *   node --import tsx bench/make-large-slide.ts --size 40000 --out out/bench/large-40k.tif
 *   node --import tsx bench/slide-read.ts --slide out/bench/large-40k.tif
 * The JPEG 2000 SVS: --slide ../shared/fixtures/slides/tcga-cr-7395-01a-01-ts1.svs
 *
 * Modes: slideseg sequential; `--concurrency` reads in flight in one thread (JPEG decodes shared between this thread
 * and libuv's pool); the same with a decode pool of `--workers` threads; and, for comparison in the same run, the
 * sharp/libvips JPEG path (a child process with SLIDESEG_TURBOJPEG=none; JPEG slides) and whole-block decodes only (a child
 * with SLIDESEG_JPEG_TOP=0: no top-rows decodes of a read's last block row), sequential and concurrent. Then a per-stage
 * profile of sequential cold reads, made by running the reader's steps one at a time on the same regions.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { tuneMalloc } from '../src/core/malloc-tuning.ts';
import { loadSharp } from '../src/core/sharp.ts';
import { openByteSource } from '../src/slide/bytesource.ts';
import { assembleJpeg, jpegFrameSize } from '../src/slide/codecs/block.ts';
import { decodeBlock } from '../src/slide/codecs/decode.ts';
import { turboJpegAvailable } from '../src/slide/codecs/jpeg-turbo.ts';
import { openSlide } from '../src/slide/index.ts';
import { parseTiff } from '../src/slide/tiff/ifd.ts';
import { TiffImage } from '../src/slide/tiff/image.ts';
import { Compression, Photometric, Tag } from '../src/slide/tiff/tags.ts';

// As the CLI does (core/malloc-tuning.ts); SLIDESEG_MALLOC_TUNING=0 measures glibc's defaults.
process.stderr.write(`glibc malloc tuning (as the CLI): ${tuneMalloc() ? 'on' : 'off'}\n`);

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SIZE = 256;
const SEED = 12345;
const CACHE_BYTES = 32 * 1024 * 1024;

const { values } = parseArgs({
  options: {
    slide: { type: 'string', default: join(ROOT, 'samples', 'cmu-1-small-region.svs') },
    reads: { type: 'string', default: '600' },
    warmup: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '8' },
    workers: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
    // internal: the sharp comparison rows, run in a child process without libturbojpeg
    'sharp-only': { type: 'boolean', default: false },
    // internal: the whole-block rows, run in a child process with SLIDESEG_JPEG_TOP=0
    'whole-blocks-only': { type: 'boolean', default: false },
  },
});
const SLIDE = resolve(values.slide);
const N = Number(values.reads);
const WARMUP = Number(values.warmup);
const CONCURRENCY = Number(values.concurrency);
const WORKERS = Number(values.workers);
const say = (s: string) => process.stderr.write(`${s}\n`);

/** xorshift32, mirrored in bench/slide_read_openslide.py. */
function positions(n: number, width: number, height: number): [number, number][] {
  let s = SEED >>> 0;
  const next = (limit: number) => {
    s ^= (s << 13) >>> 0;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= (s << 5) >>> 0;
    s >>>= 0;
    return s % (limit + 1);
  };
  const out: [number, number][] = [];
  for (let i = 0; i < n; i++) out.push([next(width - SIZE), next(height - SIZE)]);
  return out;
}

interface ModeResult {
  mode: string;
  readsPerSec: number;
}

async function run(mode: string, workers: number, concurrency: number): Promise<ModeResult> {
  const slide = await openSlide(SLIDE, { workers, cacheBytes: CACHE_BYTES });
  const pts = positions(WARMUP + N, slide.levels[0].width, slide.levels[0].height);
  for (const [x, y] of pts.slice(0, WARMUP))
    await slide.readRegion({ x, y, level: 0, width: SIZE, height: SIZE });
  const timed = pts.slice(WARMUP);
  let next = 0;
  const t0 = performance.now();
  let lastReport = t0;
  const reader = async () => {
    while (next < timed.length) {
      const [x, y] = timed[next++];
      await slide.readRegion({ x, y, level: 0, width: SIZE, height: SIZE });
      const now = performance.now();
      if (now - lastReport > 2000) {
        lastReport = now;
        const rate = next / ((now - t0) / 1000);
        say(
          `  ${mode}: ${next}/${N} reads, ${rate.toFixed(0)} reads/s, ETA ${((N - next) / rate).toFixed(0)} s`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, reader));
  const readsPerSec = N / ((performance.now() - t0) / 1000);
  await slide.close();
  return { mode, readsPerSec };
}

if (values['sharp-only']) {
  if (turboJpegAvailable()) throw new Error('--sharp-only needs SLIDESEG_TURBOJPEG=none');
  const rows = [
    await run('slideseg, sharp JPEG path, sequential', 0, 1),
    await run(`slideseg, sharp JPEG path, ${CONCURRENCY} concurrent`, 0, CONCURRENCY),
  ];
  console.log(JSON.stringify(rows));
  process.exit(0);
}

if (values['whole-blocks-only']) {
  const rows = [
    await run('slideseg, whole JPEG blocks only (SLIDESEG_JPEG_TOP=0), sequential', 0, 1),
    await run(`slideseg, whole JPEG blocks only, ${CONCURRENCY} concurrent`, 0, CONCURRENCY),
  ];
  console.log(JSON.stringify(rows));
  process.exit(0);
}

/** The comparison rows of a child process: this benchmark with `flag` and `env`. */
function childRows(flag: string, env: Record<string, string>): ModeResult[] {
  return JSON.parse(
    execFileSync(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2), flag],
      {
        encoding: 'utf8',
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    ),
  ) as ModeResult[];
}

async function levelZeroIsJpeg(): Promise<boolean> {
  const bytes = await openByteSource(SLIDE);
  try {
    const tiff = await parseTiff(bytes);
    return tiff.ifds[0].number(Tag.Compression, 1) === Compression.JPEG;
  } finally {
    await bytes.close();
  }
}

interface StageRow {
  stage: string;
  msPerRead: number;
}

/**
 * The steps of a sequential cold read, one at a time, on the regions of the timed reads: positioned reads of the
 * tiles' bytes, JPEGTables splice + frame header, decode to RGBA (libturbojpeg: colour conversion is inside it),
 * the same decode through sharp for comparison, and a warm read of the same region (cache lookups + composing the
 * output from the tiles + the API's checks).
 */
async function profile(): Promise<{ stages: StageRow[]; tilesPerRead: number } | null> {
  const bytes = await openByteSource(SLIDE);
  const tiff = await parseTiff(bytes);
  const img = new TiffImage(bytes.name, tiff.ifds[0], tiff.littleEndian, bytes.size);
  if (!img.tiled || img.format.compression !== Compression.JPEG) {
    await bytes.close();
    return null;
  }
  const slide = await openSlide(SLIDE, { cacheBytes: CACHE_BYTES });
  const sharp = await loadSharp();
  const pts = positions(WARMUP + N, img.width, img.height).slice(WARMUP, WARMUP + Math.min(N, 300));
  const t = { read: 0, splice: 0, decode: 0, sharp: 0, warm: 0, cold: 0 };
  let tiles = 0;
  for (const [x, y] of pts) {
    const region = { x, y, level: 0, width: SIZE, height: SIZE };
    let t0 = performance.now();
    await slide.readRegion(region);
    t.cold += performance.now() - t0;
    t0 = performance.now();
    await slide.readRegion(region);
    t.warm += performance.now() - t0;
    const blocks: [number, number][] = [];
    for (
      let row = Math.floor(y / img.blockHeight);
      row <= Math.floor((y + SIZE - 1) / img.blockHeight);
      row++
    )
      for (
        let col = Math.floor(x / img.blockWidth);
        col <= Math.floor((x + SIZE - 1) / img.blockWidth);
        col++
      )
        blocks.push([col, row]);
    tiles += blocks.length;
    t0 = performance.now();
    const data = await bytes.readMany(blocks.map(([c, r]) => img.blockRanges(c, r)[0]));
    t.read += performance.now() - t0;
    for (const d of data) {
      t0 = performance.now();
      // As the reader does: JPEGTables spliced in, and the Adobe marker where the photometric is RGB.
      const { stream } = assembleJpeg(img.format.jpegTables, d, img.format.photometric === Photometric.RGB);
      jpegFrameSize(stream);
      t.splice += performance.now() - t0;
      t0 = performance.now();
      await decodeBlock({ format: img.format, data: [d], width: img.blockWidth, height: img.blockHeight });
      t.decode += performance.now() - t0;
      t0 = performance.now();
      await sharp(stream, { failOn: 'error', sequentialRead: true }).ensureAlpha().raw().toBuffer();
      t.sharp += performance.now() - t0;
    }
  }
  await slide.close();
  await bytes.close();
  const per = (ms: number) => ms / pts.length;
  const decodeOnly = t.decode - t.splice; // decodeBlock splices too
  const accounted = t.read + t.splice + decodeOnly + t.warm;
  return {
    tilesPerRead: tiles / pts.length,
    stages: [
      { stage: 'range reads (positioned file reads of the tiles)', msPerRead: per(t.read) },
      { stage: 'JPEGTables splice + frame header', msPerRead: per(t.splice) },
      { stage: 'decode to RGBA, libturbojpeg (incl. YCbCr→RGB)', msPerRead: per(decodeOnly) },
      { stage: 'cache lookups + compose + checks (a warm read)', msPerRead: per(t.warm) },
      { stage: 'sum of the stages', msPerRead: per(accounted) },
      { stage: 'cold read, end to end (sequential)', msPerRead: per(t.cold) },
      { stage: '(comparison) decode to RGBA through sharp/libvips', msPerRead: per(t.sharp) },
    ],
  };
}

say(`slide ${SLIDE}; libturbojpeg ${turboJpegAvailable() ? 'loaded' : 'NOT available (sharp decodes JPEG)'}`);
// "Cold" means the decoded-tile caches are empty, not the disk: the file is read once into the OS page cache first,
// and OpenSlide runs before and after slideseg (its better run is the reference), so neither side is charged for
// disk reads the other one saved it.
say('reading the file once into the page cache …');
{
  const bytes = await openByteSource(SLIDE);
  const chunk = 64 * 1024 * 1024;
  for (let at = 0; at < bytes.size; at += chunk) await bytes.read(at, Math.min(chunk, bytes.size - at));
  await bytes.close();
}
function runOpenSlide(): { reads_per_s: number; version: string } {
  say('OpenSlide …');
  return JSON.parse(
    execFileSync(
      '/usr/bin/python3',
      [join(ROOT, 'bench', 'slide_read_openslide.py'), SLIDE, String(N), String(SEED), String(WARMUP)],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    ),
  );
}
const openslideFirst = runOpenSlide();
const rows: ModeResult[] = [];
rows.push(await run('slideseg, sequential', 0, 1));
rows.push(await run(`slideseg, ${CONCURRENCY} concurrent`, 0, CONCURRENCY));
rows.push(await run(`slideseg, ${CONCURRENCY} concurrent, ${WORKERS} decode workers`, WORKERS, CONCURRENCY));
if (await levelZeroIsJpeg()) {
  say('whole JPEG blocks only (child process) …');
  rows.push(...childRows('--whole-blocks-only', { SLIDESEG_JPEG_TOP: '0' }));
  say('sharp JPEG path (child process) …');
  rows.push(...childRows('--sharp-only', { SLIDESEG_TURBOJPEG: 'none' }));
}
const openslideLast = runOpenSlide();
const openslide = openslideFirst.reads_per_s >= openslideLast.reads_per_s ? openslideFirst : openslideLast;
rows.unshift({
  mode: `OpenSlide ${openslide.version}, sequential (best of ${openslideFirst.reads_per_s.toFixed(0)} before, ${openslideLast.reads_per_s.toFixed(0)} after)`,
  readsPerSec: openslide.reads_per_s,
});
say('per-stage profile …');
const stages = await profile();

if (values.json) {
  console.log(
    JSON.stringify({ slide: SLIDE, size: SIZE, reads: N, warmup: WARMUP, rows, profile: stages }, null, 2),
  );
} else {
  console.log(`cold random ${SIZE}x${SIZE} level-0 reads: ${N} timed after ${WARMUP} warm-up, ${SLIDE}`);
  console.log(`| reader | reads/s | × OpenSlide |\n|---|---:|---:|`);
  for (const r of rows) {
    console.log(
      `| ${r.mode} | ${r.readsPerSec.toFixed(0)} | ${(r.readsPerSec / openslide.reads_per_s).toFixed(2)} |`,
    );
  }
  if (stages) {
    console.log(`\nper-stage, sequential cold reads (${stages.tilesPerRead.toFixed(2)} tiles per read)`);
    console.log('| stage | ms per read |\n|---|---:|');
    for (const s of stages.stages) console.log(`| ${s.stage} | ${s.msPerRead.toFixed(3)} |`);
  }
}

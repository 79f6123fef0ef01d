/**
 * Random 256x256 level-0 reads per second from cmu-1-small-region.svs, against OpenSlide (python3-openslide)
 * on the same positions in the same run. Modes: sequential in-thread, concurrent in-thread, worker pool.
 *
 *   node --import tsx bench/slide-read.ts [--reads 3000] [--concurrency 8] [--workers 2]
 */
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openSlide } from '../src/slide/index.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = process.env.SLIDESEG_FIXTURES ?? resolve(ROOT, '../shared/fixtures');
const SLIDE = join(FIXTURES, 'slides', 'cmu-1-small-region.svs');
const SIZE = 256;
const SEED = 12345;

const { values } = parseArgs({
  options: {
    reads: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '8' },
    workers: { type: 'string', default: '2' },
  },
});
const N = Number(values.reads);
const CONCURRENCY = Number(values.concurrency);
const WORKERS = Number(values.workers);

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

async function run(label: string, workers: number, concurrency: number): Promise<number> {
  // A fresh cache per mode (32 MiB, like OpenSlide's default) so every mode starts cold.
  const slide = await openSlide(SLIDE, { workers, cacheBytes: 32 * 1024 * 1024 });
  const pts = positions(N, slide.levels[0].width, slide.levels[0].height);
  if (workers > 0) await slide.readRegion({ x: 0, y: 0, level: 0, width: 1, height: 1 }); // start the pool
  let next = 0;
  const t0 = performance.now();
  let lastReport = t0;
  const worker = async () => {
    while (next < pts.length) {
      const [x, y] = pts[next++];
      await slide.readRegion({ x, y, level: 0, width: SIZE, height: SIZE });
      const now = performance.now();
      if (now - lastReport > 2000) {
        lastReport = now;
        const rate = next / ((now - t0) / 1000);
        process.stderr.write(
          `  ${label}: ${next}/${N} reads, ${rate.toFixed(0)} reads/s, ETA ${((N - next) / rate).toFixed(0)} s\n`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const rate = N / ((performance.now() - t0) / 1000);
  await slide.close();
  console.log(`${label.padEnd(44)} ${rate.toFixed(0).padStart(6)} reads/s`);
  return rate;
}

const openslide = JSON.parse(
  execFileSync(
    '/usr/bin/python3',
    [join(ROOT, 'bench', 'slide_read_openslide.py'), SLIDE, String(N), String(SEED)],
    {
      encoding: 'utf8',
    },
  ),
) as { reads_per_s: number };
console.log(`random ${SIZE}x${SIZE} level-0 reads, ${N} per mode, ${SLIDE}`);
console.log(
  `${'OpenSlide 3.4.1 (python, single thread)'.padEnd(44)} ${openslide.reads_per_s.toFixed(0).padStart(6)} reads/s`,
);
const results = [
  await run('slideseg in-thread, sequential', 0, 1),
  await run(`slideseg in-thread, ${CONCURRENCY} concurrent`, 0, CONCURRENCY),
  await run(`slideseg ${WORKERS} workers, ${CONCURRENCY} concurrent`, WORKERS, CONCURRENCY),
];
console.log(`best / OpenSlide: ${(Math.max(...results) / openslide.reads_per_s).toFixed(2)}x`);

/**
 * Foreground-random 256x256 patches at 0.5 µm/px streamed per second from the same tissue (CMU-1) stored as Aperio
 * SVS, OME-Zarr and pyramidal TIFFs. Tissue detection is timed apart; the stream timing covers spec generation,
 * reads (decode, resample to 0.5 mpp) and RGBA→RGB, as a training loop would consume them.
 *
 *   node --import tsx bench/patching-stream.ts [--count 300] [--size 256] [--mpp 0.5] [--concurrency 4]
 *     [--prefetch 16] [--workers 0]
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { detectTissue, foregroundRandomSampler, patchStream } from '../src/patching/index.ts';
import { openSlide } from '../src/slide/index.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = process.env.SLIDESEG_FIXTURES ?? resolve(ROOT, '../shared/fixtures');
const SLIDES = [
  ['svs (JPEG tiles)', join(FIXTURES, 'slides', 'cmu-1-small-region.svs')],
  ['ome-zarr (blosc zstd)', join(FIXTURES, 'derived', 'cmu-1.ome.zarr')],
  ['ome-tiff subifds (deflate)', join(FIXTURES, 'derived', 'cmu-1-pyramid-subifds.ome.tif')],
  ['bigtiff pages (deflate)', join(FIXTURES, 'derived', 'cmu-1-pyramid-pages.tif')],
];

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '300' },
    size: { type: 'string', default: '256' },
    mpp: { type: 'string', default: '0.5' },
    concurrency: { type: 'string', default: '4' },
    prefetch: { type: 'string', default: '16' },
    workers: { type: 'string', default: '0' },
  },
});
const count = Number(values.count);
const size = Number(values.size);
const mpp = Number(values.mpp);

console.log(
  `foreground-random ${size}x${size} @ ${mpp} mpp, ${count} patches, concurrency ${values.concurrency}, ` +
    `prefetch ${values.prefetch}, decode workers ${values.workers}`,
);
for (const [label, path] of SLIDES) {
  const slide = await openSlide(path, { workers: Number(values.workers) });
  try {
    if (!slide.mpp) {
      console.log(`${label.padEnd(28)} skipped: no mpp in ${path}`);
      continue;
    }
    const t0 = performance.now();
    const tissue = await detectTissue(slide);
    const tissueMs = performance.now() - t0;
    const stream = patchStream({
      slides: [slide],
      sampler: foregroundRandomSampler({ size, mpp, minTissue: 0.5 }),
      count,
      seed: 1,
      concurrency: Number(values.concurrency),
      prefetch: Number(values.prefetch),
      tissueMasks: [tissue],
    });
    const t1 = performance.now();
    let n = 0;
    for await (const _ of stream) n++;
    const seconds = (performance.now() - t1) / 1000;
    console.log(
      `${label.padEnd(28)} ${slide.levels[0].width}x${slide.levels[0].height} mpp ${slide.mpp.x.toFixed(3)}: ` +
        `${(n / seconds).toFixed(1)} patches/s (${n} in ${seconds.toFixed(2)} s); tissue mask ${tissueMs.toFixed(0)} ms`,
    );
  } finally {
    await slide.close();
  }
}

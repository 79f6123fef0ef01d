/**
 * Makes the large slide of the cold-read benchmarks: the sample slide's level 0 repeated (mirrored tiles of the
 * 2220x2967 image) to SIZE x SIZE pixels, written by libvips as a JPEG-tiled pyramidal TIFF (256 px tiles, quality 90,
 * 4:2:0 YCbCr, a level every factor 2). OpenSlide opens it as "generic-tiff"; slideseg as "pyramidal-tiff".
 *
 *   node --import tsx bench/make-large-slide.ts [--size 40000] [--out out/bench/large-40k.tif]
 *
 * 40000 px: ~24k level-0 tiles, about 1.1 GB, about 2 minutes on 2 cores.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '40000' },
    out: { type: 'string' },
  },
});
const size = Number(values.size);
// Default: out/bench/ of the repository (git-ignored), whatever the working folder.
const out = values.out ? resolve(values.out) : join(ROOT, 'out', 'bench', `large-${size / 1000}k.tif`);
mkdirSync(dirname(out), { recursive: true });

const sample = join(ROOT, 'samples', 'cmu-1-small-region.svs');
const tile = await sharp(sample, { page: 0 }).removeAlpha().png({ compressionLevel: 0 }).toBuffer();
const meta = await sharp(tile).metadata();
const t0 = performance.now();
await sharp(tile, { unlimited: true })
  .extend({
    right: size - (meta.width ?? 0),
    bottom: size - (meta.height ?? 0),
    extendWith: 'mirror',
  })
  .tiff({
    tile: true,
    tileWidth: 256,
    tileHeight: 256,
    pyramid: true,
    compression: 'jpeg',
    quality: 90,
    xres: 1000 / 0.25,
    yres: 1000 / 0.25,
    resolutionUnit: 'cm',
  })
  .toFile(out);
const bytes = statSync(out).size;
console.log(
  `${out}: ${size}x${size}, ${(bytes / 2 ** 30).toFixed(2)} GiB, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
);

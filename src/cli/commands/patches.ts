import { parseArgs } from 'node:util';
import type { AnnotationSet } from '../../annotations/types.ts';
import type { Patch } from '../../patching/index.ts';
import { type Command, UsageError } from '../command.ts';
import { numberOption } from '../options.ts';

const usage = `slideseg patches SLIDE [SLIDE...] --sampler NAME --count N [options]

Streams patches from slides (nothing written to disk but the pictures asked for) and reports the rate.

Options:
  --sampler NAME      grid | random | foreground-random | foreground-grid | multi-magnification
  --count N           number of patches (default: all for grids; required for random samplers)
  --size N            patch side in pixels (default 256)
  --mpp X             resolution in micrometres per pixel (default: level 0 / --level)
  --level N           pyramid level (when no --mpp)
  --mpps X,Y,...      multi-magnification: resolutions to draw from
  --overlap N         grid overlap in pixels (default 0)
  --min-tissue F      minimum tissue fraction for foreground samplers (default 0.5)
  --seed N            random seed (default 0)
  --prefetch N        patches read ahead (default 8)
  --concurrency N     reads in flight (default 4)
  --decode-threads N  decode worker threads per slide (default 0: decode in this thread)
  --annotations PATH  Aperio XML or GeoJSON: draws the label mask on the preview (one slide only)
  --preview PATH      contact sheet PNG of the patches
  --overview PATH     slide thumbnail PNG with the patch footprints drawn (first slide)
  --columns N         contact sheet columns (default 8)`;

/** A numeric flag within its range (OPTION_RANGES); `mpps` values are resolutions. */
function num(name: string, value: string | undefined, _integer: boolean): number | undefined {
  return numberOption(name === 'mpps' ? 'mpp' : name, value);
}

export const command: Command = {
  renamedOptions: { '--workers': '--decode-threads N (--workers always counts worker processes)' },
  name: 'patches',
  summary: 'Stream patches with a sampler; contact sheet and overview PNGs, patches/s',
  usage,
  async run(args) {
    const { readAnnotations } = await import('../../annotations/index.ts');
    const { createSampler, openSlideByPath, patchStream, writeContactSheet, writePatchOverview } =
      await import('../../patching/index.ts');
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        sampler: { type: 'string', default: 'random' },
        count: { type: 'string' },
        size: { type: 'string' },
        mpp: { type: 'string' },
        level: { type: 'string' },
        mpps: { type: 'string' },
        overlap: { type: 'string' },
        'min-tissue': { type: 'string' },
        seed: { type: 'string' },
        prefetch: { type: 'string' },
        concurrency: { type: 'string' },
        'decode-threads': { type: 'string' },
        annotations: { type: 'string' },
        preview: { type: 'string' },
        overview: { type: 'string' },
        columns: { type: 'string' },
        backend: { type: 'string' },
        verbose: { type: 'boolean' },
      },
    });
    if (positionals.length === 0) throw new UsageError(`expected at least one SLIDE\n\n${usage}`);
    const mpps = values.mpps?.split(',').map((v) => num('mpps', v, false) as number);
    const sampler = createSampler(values.sampler, {
      size: num('size', values.size, true),
      mpp: num('mpp', values.mpp, false),
      level: num('level', values.level, true),
      mpps,
      overlap: num('overlap', values.overlap, true),
      minTissue: num('min-tissue', values['min-tissue'], false),
    });
    const count = num('count', values.count, true);
    if (count === undefined && !sampler.finite)
      throw new UsageError(`--count is required with --sampler ${sampler.name}`);
    let annotations: AnnotationSet | undefined;
    if (values.annotations) {
      if (positionals.length > 1) throw new UsageError('--annotations works with one SLIDE only');
      annotations = await readAnnotations(values.annotations);
    }
    const workers = num('decode-threads', values['decode-threads'], true) ?? 0;
    const slides = [];
    try {
      for (const p of positionals) slides.push(await openSlideByPath(p, { workers }));
      const keep = values.preview || values.overview;
      const kept: Patch[] = [];
      const t0 = performance.now();
      let n = 0;
      let last = t0;
      for await (const patch of patchStream({
        slides,
        sampler,
        count,
        seed: num('seed', values.seed, true) ?? 0,
        prefetch: num('prefetch', values.prefetch, true),
        concurrency: num('concurrency', values.concurrency, true),
        annotations,
      })) {
        n++;
        if (keep) kept.push(patch);
        const now = performance.now();
        if (now - last > 1000) {
          const rate = n / ((now - t0) / 1000);
          const eta = count ? ` ETA ${((count - n) / rate).toFixed(0)} s` : '';
          process.stderr.write(
            `\r${n}${count ? `/${count}` : ''} patches, ${rate.toFixed(1)} patches/s${eta}   `,
          );
          last = now;
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      process.stderr.write('\n');
      console.log(
        `${n} patches (${sampler.name}) in ${seconds.toFixed(2)} s: ${(n / seconds).toFixed(1)} patches/s`,
      );
      if (values.preview) {
        await writeContactSheet(kept, values.preview, num('columns', values.columns, true) ?? 8);
        console.log(`wrote ${values.preview}`);
      }
      if (values.overview) {
        const first = slides[0];
        const thumb = await first.thumbnail(1024);
        await writePatchOverview(
          thumb,
          first.levels[0].width,
          kept.filter((p) => p.slideIndex === 0),
          values.overview,
        );
        console.log(`wrote ${values.overview}`);
      }
    } finally {
      await Promise.allSettled(slides.map((s) => s.close()));
    }
    return 0;
  },
};

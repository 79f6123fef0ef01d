import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';
import { numberOption } from '../options.ts';

const usage = `slideseg tissue SLIDE --mask mask.png [--overlay overlay.png] [options]

Detects tissue on a low-resolution view (HSV saturation, median filter, Otsu threshold, hole filling,
small-object removal) and writes the mask as a PNG (255 = tissue).

Options:
  --mask PATH         mask PNG (required)
  --overlay PATH      the low-resolution view with tissue tinted green
  --max-size N        longest side of the view the mask is computed on (default 1536)
  --saturation N      fixed saturation threshold 0..255 instead of Otsu's
  --median N          median filter aperture, odd (default 7)
  --min-object N      drop tissue pieces smaller than N mask pixels (default 64)
  --max-hole N        fill holes smaller than N mask pixels (default 64)`;

/** A numeric flag within its range (OPTION_RANGES). */
function intOption(name: string, value: string | undefined): number | undefined {
  return numberOption(name, value);
}

export const command: Command = {
  name: 'tissue',
  renamedOptions: {
    '--out': '--mask FILE (--out always names a folder)',
    '--threshold': '--saturation N (--threshold is a probability in evaluate and predict)',
  },
  summary: 'Tissue mask of a slide (saturation + Otsu), as PNG, with an optional overlay',
  usage,
  async run(args) {
    const { detectTissueWithView, openSlideByPath, tissueFraction, writeMaskPng, writeTissueOverlayPng } =
      await import('../../patching/index.ts');
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        mask: { type: 'string' },
        overlay: { type: 'string' },
        'max-size': { type: 'string' },
        saturation: { type: 'string' },
        median: { type: 'string' },
        'min-object': { type: 'string' },
        'max-hole': { type: 'string' },
      },
    });
    if (positionals.length !== 1)
      throw new UsageError(`expected one SLIDE, got ${positionals.length}\n\n${usage}`);
    if (!values.mask) throw new UsageError(`--mask mask.png is required\n\n${usage}`);
    const source = positionals[0];
    const slide = await openSlideByPath(source);
    try {
      const t0 = performance.now();
      const { tissue, view } = await detectTissueWithView(slide, {
        maxSize: intOption('max-size', values['max-size']),
        threshold: intOption('saturation', values.saturation),
        medianSize: intOption('median', values.median),
        minObjectPixels: intOption('min-object', values['min-object']),
        maxHolePixels: intOption('max-hole', values['max-hole']),
      });
      await writeMaskPng(tissue, values.mask);
      if (values.overlay) await writeTissueOverlayPng(view, tissue, values.overlay);
      const seconds = (performance.now() - t0) / 1000;
      console.log(
        `${source}: ${tissue.width}x${tissue.height} mask from level ${tissue.level}, ` +
          `${tissue.downsample.toFixed(2)} level-0 px per mask px, saturation threshold ${tissue.threshold}, ` +
          `tissue ${(100 * tissueFraction(tissue)).toFixed(1)}% (${seconds.toFixed(2)} s)`,
      );
      console.log(`wrote ${values.mask}${values.overlay ? ` and ${values.overlay}` : ''}`);
    } finally {
      await slide.close();
    }
    return 0;
  },
};

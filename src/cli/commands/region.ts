import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';
import { numberOption } from '../options.ts';

export const command: Command = {
  name: 'region',
  renamedOptions: { '--out': '--png FILE (--out always names a folder)' },
  summary: 'Read a region of a slide (OpenSlide read_region semantics) and save it as an RGBA PNG',
  usage:
    'slideseg region SLIDE --x X --y Y --level L --width W --height H --png FILE\n' +
    '  X, Y: top-left in level-0 pixels; W, H: size in pixels of level L; outside the slide is transparent',
  async run(args) {
    const { default: sharp } = await import('sharp');
    const { openSlide } = await import('../../slide/open.ts');
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        x: { type: 'string' },
        y: { type: 'string' },
        level: { type: 'string', default: '0' },
        width: { type: 'string' },
        height: { type: 'string' },
        png: { type: 'string' },
      },
    });
    if (positionals.length !== 1 || !values.png) throw new UsageError(`usage: ${this.usage}`);
    const int = (name: 'x' | 'y' | 'level' | 'width' | 'height') => {
      const v = numberOption(name, values[name]);
      if (v === undefined) throw new UsageError(`--${name} is required; see slideseg region --help`);
      return v;
    };
    const req = { x: int('x'), y: int('y'), level: int('level'), width: int('width'), height: int('height') };
    if (req.width <= 0 || req.height <= 0) throw new UsageError('--width and --height must be positive');
    const slide = await openSlide(positionals[0]);
    try {
      const img = await slide.readRegion(req);
      await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 4 } })
        .png()
        .toFile(values.png);
      console.log(`wrote ${values.png} (${img.width}x${img.height} RGBA, level ${req.level})`);
      return 0;
    } finally {
      await slide.close();
    }
  },
};

import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.ts';

export const command: Command = {
  name: 'info',
  summary: 'Show a slide’s format, levels, resolution, associated images and properties',
  usage: 'slideseg info SLIDE [--json]\n  SLIDE: .svs/.tif/.ome.tif/.ome.zarr/.png/.jpg file or http(s) URL',
  async run(args) {
    const { openSlide } = await import('../../slide/open.ts');
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { json: { type: 'boolean' } },
    });
    if (positionals.length !== 1) throw new UsageError(`usage: ${this.usage}`);
    const slide = await openSlide(positionals[0]);
    try {
      const info = {
        source: slide.source,
        format: slide.format,
        levels: slide.levels,
        mpp: slide.mpp,
        objectivePower: slide.objectivePower,
        associatedImages: slide.associatedImages,
        properties: slide.properties,
      };
      if (values.json) {
        console.log(JSON.stringify(info, null, 2));
        return 0;
      }
      console.log(`${slide.source}\n  format: ${slide.format}`);
      const mpp = slide.mpp ? `${slide.mpp.x} x ${slide.mpp.y} µm/px` : 'unknown';
      console.log(`  mpp: ${mpp}   objective: ${slide.objectivePower ?? 'unknown'}`);
      slide.levels.forEach((l, i) => {
        const tiles = l.tileWidth ? `tiles ${l.tileWidth}x${l.tileHeight}` : 'untiled';
        console.log(`  level ${i}: ${l.width} x ${l.height}  downsample ${l.downsample}  ${tiles}`);
      });
      console.log(`  associated images: ${slide.associatedImages.join(', ') || 'none'}`);
      for (const [k, v] of Object.entries(slide.properties)) {
        const oneLine = v.replace(/\r?\n/g, ' ');
        console.log(`  ${k} = ${oneLine.length > 100 ? `${oneLine.slice(0, 100)}…` : oneLine}`);
      }
      return 0;
    } finally {
      await slide.close();
    }
  },
};

import { parseArgs } from 'node:util';
import type { Command } from '../command.ts';

export const command: Command = {
  name: 'backends',
  summary: 'List TF.js backends and initialise one (--backend) to check it works; name the JPEG tile decoder',
  usage: 'slideseg backends [--backend wasm|cpu|tensorflow]',
  async run(args) {
    const { ready, tf } = await import('../../engine/index.ts');
    const { values } = parseArgs({
      args,
      options: { backend: { type: 'string' }, verbose: { type: 'boolean' } },
    });
    const chosen = await ready(values.backend);
    const registered = Object.keys(tf.engine().registryFactory);
    const { jpegDecoderDescription } = await import('../../slide/index.ts');
    console.log(
      `registered: ${registered.join(', ')}\nactive: ${chosen}\nJPEG tiles: ${jpegDecoderDescription()}`,
    );
    return 0;
  },
};

import { parseArgs } from 'node:util';
import { ready, tf } from '../../engine/index.ts';
import type { Command } from '../command.ts';

export const command: Command = {
  name: 'backends',
  summary: 'List TF.js backends and initialise one (--backend) to check it works',
  usage: 'slideseg backends [--backend wasm|cpu|tensorflow]',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: { backend: { type: 'string' }, verbose: { type: 'boolean' } },
    });
    const chosen = await ready(values.backend);
    const registered = Object.keys(tf.engine().registryFactory);
    console.log(`registered: ${registered.join(', ')}\nactive: ${chosen}`);
    return 0;
  },
};

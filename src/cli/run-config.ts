/** Shared options of the config-driven commands (`train`, `pretrain`): a config file plus dotted overrides. */
import type { ParseArgsConfig } from 'node:util';

export const RUN_CONFIG_OPTIONS = {
  config: { type: 'string' },
  data: { type: 'string' },
  out: { type: 'string' },
  steps: { type: 'string' },
  resume: { type: 'boolean' },
  set: { type: 'string', multiple: true },
  backend: { type: 'string' },
  quiet: { type: 'boolean' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/**
 * `--data`, `--out`, `--steps` and every `--set key=value` as [dotted key, raw value] pairs, in that order.
 * `--data` names a folder (data.dir) or, where the command takes one, a data-set file (.yaml/.yml/.json) for
 * the `dataFileKey` key.
 */
export function configOverrides(
  values: {
    data?: string;
    out?: string;
    steps?: string;
    set?: string[];
  },
  dataFileKey?: string,
): [string, string][] {
  const overrides: [string, string][] = [];
  if (values.data) {
    const isFile = /\.(ya?ml|json)$/i.test(values.data);
    overrides.push([isFile && dataFileKey ? dataFileKey : 'data.dir', values.data]);
  }
  if (values.out) overrides.push(['out', values.out]);
  if (values.steps) overrides.push(['steps', values.steps]);
  for (const s of values.set ?? []) {
    const eq = s.indexOf('=');
    if (eq < 1) throw new Error(`--set expects key=value, got '${s}'`);
    overrides.push([s.slice(0, eq), s.slice(eq + 1)]);
  }
  return overrides;
}

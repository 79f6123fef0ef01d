/**
 * The sweep file: a base training config, optional data, seeds and named variants, each a set of `--set`-style
 * dotted overrides (a list value replaces the list). Paths are relative to the sweep file: base, data, and the
 * path keys of variants (data.dir/images/masks/slides, model.from/encoder).
 *
 *   base: train.yaml
 *   data: ../data            # as train's --data (a folder, or a slide data-set .yaml)
 *   seeds: [0, 1]
 *   variants:
 *     dice-ce: {}
 *     mcc: { model.numLabels: 1, loss: [ { name: mcc } ] }
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';

export interface SweepVariant {
  name: string;
  /** [dotted key, value] pairs applied over the base config, in file order. */
  overrides: [string, unknown][];
}

export interface SweepSpec {
  /** The sweep file (errors name it). */
  source: string;
  /** Absolute path of the base training config. */
  base: string;
  /** Absolute data folder or slide data-set file, when given. */
  data?: string;
  seeds: number[];
  variants: SweepVariant[];
}

const VARIANT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Training-config keys that hold paths: a relative one in a variant is relative to the sweep file. */
const PATH_KEYS = new Set([
  'data.dir',
  'data.images',
  'data.masks',
  'data.slides',
  'model.from',
  'model.encoder',
]);

/** Checks a parsed sweep object; relative paths are resolved against `baseDir`. */
export function sweepSpecFrom(raw: unknown, source: string, baseDir: string): SweepSpec {
  const fail = (m: string): never => {
    throw new Error(`${source}: ${m}`);
  };
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw))
    fail('expected a mapping with base, seeds and variants');
  const o = raw as Record<string, unknown>;
  const known = ['base', 'data', 'seeds', 'variants'];
  for (const k of Object.keys(o))
    if (!known.includes(k)) fail(`unknown key '${k}' (known: ${known.join(', ')})`);
  if (typeof o.base !== 'string' || o.base === '') fail('`base` must name a training config file');
  if (o.data !== undefined && (typeof o.data !== 'string' || o.data === ''))
    fail('`data` must be a folder or a slide data-set file');
  const seeds = o.seeds ?? [0];
  if (!Array.isArray(seeds) || seeds.length === 0 || !seeds.every((s) => Number.isInteger(s) && s >= 0))
    fail(`seeds must be a non-empty list of non-negative integers, got ${JSON.stringify(o.seeds)}`);
  if (new Set(seeds as number[]).size !== (seeds as number[]).length) fail('seeds lists a seed twice');
  const v = o.variants;
  if (v == null || typeof v !== 'object' || Array.isArray(v) || Object.keys(v).length === 0)
    fail('`variants` must map variant names to override mappings (use {} for the base config as it is)');
  const variants = Object.entries(v as Record<string, unknown>).map(([name, over]): SweepVariant => {
    if (!VARIANT_NAME.test(name))
      fail(`variant name '${name}' must be letters, digits, '.', '_' or '-' (it names a folder)`);
    if (over != null && (typeof over !== 'object' || Array.isArray(over)))
      fail(`variant '${name}' must be a mapping of dotted keys to values, got ${JSON.stringify(over)}`);
    const overrides = Object.entries((over ?? {}) as Record<string, unknown>);
    for (const [key] of overrides) {
      if (!/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/.test(key)) fail(`variant '${name}': bad key '${key}'`);
      if (key === 'seed' || key === 'out') fail(`variant '${name}': '${key}' is set by the sweep`);
    }
    // Paths in overrides are relative to the sweep file, like base and data.
    return {
      name,
      overrides: overrides.map(([k, val]): [string, unknown] => [
        k,
        PATH_KEYS.has(k) && typeof val === 'string' && !isAbsolute(val) && !/^https?:/i.test(val)
          ? resolve(baseDir, val)
          : val,
      ]),
    };
  });
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  return {
    source,
    base: abs(o.base as string),
    data: o.data === undefined ? undefined : abs(o.data as string),
    seeds: seeds as number[],
    variants,
  };
}

export async function readSweepFile(path: string): Promise<SweepSpec> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read sweep file (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  return sweepSpecFrom(raw, path, dirname(resolve(path)));
}

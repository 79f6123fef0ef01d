/**
 * `slideseg` entry point. Commands come from the static table in `registry.ts` and are loaded only when used, so
 * the help and light commands start without loading TF.js, ONNX Runtime, sharp or the queue clients.
 *
 * Exit codes: 0 success, 1 failure (a one-line message), 2 usage error (with a suggestion for a mistyped command or
 * option).
 */

import { causeChain } from '../core/errors.ts';
import type { Command } from './command.ts';
import { isUsageError } from './command.ts';
import { parseArgsMessage } from './options.ts';
import { COMMANDS, loadAllCommands, loadCommand } from './registry.ts';

async function help(): Promise<string> {
  const commands = await loadAllCommands();
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'slideseg: semantic segmentation of whole-slide images (SegFormer, TF.js, ONNX Runtime)',
    '',
    'Usage: slideseg <command> [options]    (slideseg <command> --help for details)',
    '',
    'Commands:',
    ...lines,
    '',
    'Global options: --backend wasm|cpu|tensorflow (the TF.js backend, every command), --verbose, --version',
    'Exit codes: 0 done, 1 failed, 2 usage error.',
  ].join('\n');
}

/** Edit distance, for "did you mean" suggestions. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The closest of `candidates` to `word`, when it is close enough to be a typo. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = distance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/**
 * Global options work with every command: `--backend NAME` (the TF.js backend) and `--verbose` are taken out of
 * the arguments and passed on through the environment (`ready()` reads SLIDESEG_BACKEND and reports the backend
 * when verbose).
 */
function extractGlobalOptions(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--backend' || a.startsWith('--backend=')) {
      const value = a === '--backend' ? args[++i] : a.slice('--backend='.length);
      if (!value || !['wasm', 'cpu', 'tensorflow'].includes(value)) {
        throw new Error(
          `--backend: expected wasm, cpu or tensorflow, got ${value ? `'${value}'` : 'nothing'}`,
        );
      }
      process.env.SLIDESEG_BACKEND = value;
    } else if (a === '--verbose') {
      process.env.SLIDESEG_VERBOSE = '1';
    } else out.push(a);
  }
  return out;
}

/** The options a command documents in its usage text (its one list of flags). */
function documentedOptions(cmd: Command): string[] {
  return [...new Set(cmd.usage.match(/--[a-z][a-z0-9-]*/g) ?? [])];
}

/** A usage-error line for parseArgs' own errors, with a suggestion for a mistyped option. */
function usageMessage(cmd: Command, err: Error): string {
  const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(err.message)?.[1];
  if (unknown) {
    const flag = unknown.split('=')[0]!;
    const renamed = cmd.renamedOptions?.[flag];
    if (renamed) return `${flag} is now ${renamed}; see slideseg ${cmd.name} --help`;
    const near = suggest(flag, [...documentedOptions(cmd), '--help', '--backend', '--verbose']);
    return `unknown option ${flag}${near ? ` (did you mean ${near}?)` : ''}; see slideseg ${cmd.name} --help`;
  }
  return `${parseArgsMessage(err)}; see slideseg ${cmd.name} --help`;
}

function isParseArgsError(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...restArgs] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await help());
    return 0;
  }
  if (name === '--version' || name === '-V') {
    // Two levels up from src/cli and from dist/cli alike.
    const { readFileSync } = await import('node:fs');
    console.log(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
    return 0;
  }
  const cmd = await loadCommand(name);
  if (!cmd) {
    const near = suggest(name, Object.keys(COMMANDS));
    console.error(
      `slideseg: unknown command '${name}'${near ? ` (did you mean ${near}?)` : ''}; see slideseg --help`,
    );
    return 2;
  }
  if (restArgs.includes('--help') || restArgs.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  const verbose = restArgs.includes('--verbose');
  let rest: string[];
  try {
    rest = extractGlobalOptions(restArgs);
  } catch (e) {
    console.error(`slideseg ${name}: usage error: ${(e as Error).message}`);
    return 2;
  }
  // Commands allocate large typed arrays all the time: let freed memory be reused (core/malloc-tuning.ts).
  const { tuneMalloc } = await import('../core/malloc-tuning.ts');
  tuneMalloc();
  try {
    return (await cmd.run(rest)) ?? 0;
  } catch (e) {
    const err = e as Error;
    if (isUsageError(err) || isParseArgsError(err)) {
      // One line: commands may append their usage text, which `--help` shows instead.
      const first = err.message.split('\n')[0]!;
      const line = isParseArgsError(err)
        ? usageMessage(cmd, err)
        : err.message.includes('\n')
          ? `${first}; see slideseg ${cmd.name} --help`
          : first;
      console.error(`slideseg ${name}: usage error: ${line}`);
      return 2;
    }
    console.error(`slideseg ${name}: error: ${oneLine(err)}`);
    if (verbose || process.env.SLIDESEG_DEBUG) {
      console.error(err.stack);
      for (const cause of causeChain(err)) console.error('caused by:', (cause as Error)?.stack ?? cause);
    }
    return 1;
  }
}

/** The message on one line (libvips and others give several), with its causes' messages when they add anything. */
function oneLine(err: Error): string {
  const lines = String(err.message ?? err)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  return [...new Set(lines)].join('; ');
}

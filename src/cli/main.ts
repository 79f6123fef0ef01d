/**
 * `slideseg` entry point. Sub-commands are discovered from `./commands/*.ts`, so each capability adds its
 * command as one file without touching this one.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from './command.ts';

const commandsDir = join(dirname(fileURLToPath(import.meta.url)), 'commands');

async function loadCommands(): Promise<Map<string, Command>> {
  const files = readdirSync(commandsDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  const commands = new Map<string, Command>();
  for (const f of files.sort()) {
    const mod = (await import(join(commandsDir, f))) as { command?: Command };
    if (mod.command) commands.set(mod.command.name, mod.command);
  }
  return commands;
}

function help(commands: Map<string, Command>): string {
  const width = Math.max(...[...commands.keys()].map((k) => k.length));
  const lines = [...commands.values()].map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'slideseg: semantic segmentation of whole-slide images (SegFormer, TF.js, ONNX Runtime)',
    '',
    'Usage: slideseg <command> [options]    (slideseg <command> --help for details)',
    '',
    'Commands:',
    ...lines,
    '',
    'Global options: --backend wasm|cpu|tensorflow, --verbose',
  ].join('\n');
}

/**
 * Global options work with every command: `--backend NAME` and `--verbose` are taken out of the arguments and
 * passed on through the environment (`ready()` reads SLIDESEG_BACKEND and reports the backend when verbose).
 */
function extractGlobalOptions(args: string[], keepBackend: boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!keepBackend && (a === '--backend' || a.startsWith('--backend='))) {
      const value = a === '--backend' ? args[++i] : a.slice('--backend='.length);
      if (!value) throw new Error('--backend needs a value: wasm, cpu or tensorflow');
      process.env.SLIDESEG_BACKEND = value;
    } else if (a === '--verbose') {
      process.env.SLIDESEG_VERBOSE = '1';
    } else out.push(a);
  }
  return out;
}

export async function main(argv: string[]): Promise<number> {
  const commands = await loadCommands();
  const [name, ...restArgs] = argv;
  let rest = restArgs;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help(commands));
    return name ? 0 : 1;
  }
  if (name === '--version' || name === '-V') {
    const pkg = await import('../../package.json', { with: { type: 'json' } });
    console.log(pkg.default.version);
    return 0;
  }
  const verbose = rest.includes('--verbose');
  const cmd = commands.get(name);
  try {
    rest = extractGlobalOptions(rest, cmd?.ownsBackendOption === true);
  } catch (e) {
    console.error(`slideseg: error: ${(e as Error).message}`);
    return 2;
  }
  if (!cmd) {
    console.error(`slideseg: unknown command '${name}'\n\n${help(commands)}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  try {
    return (await cmd.run(rest)) ?? 0;
  } catch (e) {
    const err = e as Error;
    console.error(`slideseg ${name}: error: ${err.message}`);
    if (verbose || process.env.SLIDESEG_DEBUG) console.error(err.stack);
    return 1;
  }
}

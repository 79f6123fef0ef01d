/**
 * Worker entry points that work both from the TypeScript sources (run through tsx: tests, benchmarks, a source
 * checkout) and from the compiled package (`dist/`, plain Node, no transpiling at run time).
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The URL of the module `name` (without extension) beside `metaUrl`, with the caller's own extension. */
export function siblingModule(metaUrl: string, name: string): URL {
  return new URL(`./${name}${extname(fileURLToPath(metaUrl))}`, metaUrl);
}

/** True when `url` is a TypeScript module, which a worker thread can load only after registering tsx. */
export function needsTsx(url: URL): boolean {
  return url.pathname.endsWith('.ts');
}

/**
 * The `new Worker(...)` arguments for an ES module entry: the URL itself for JavaScript; for TypeScript, a tiny
 * script that registers tsx in the worker first (loader hooks do not reach worker entries on Node 20).
 */
export function workerSource(url: URL): { source: string | URL; eval: boolean } {
  if (!needsTsx(url)) return { source: url, eval: false };
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap =
    `import(${JSON.stringify(tsxApi)}).then((a) => { a.register(); ` +
    `return import(${JSON.stringify(url.href)}); })`;
  return { source: bootstrap, eval: true };
}

/** Options of this process that would make a child run something else than its module (or run it differently). */
const NOT_INHERITED =
  /^(-e|--eval|-p|--print|-i|--interactive|-c|--check|--input-type|--test|--watch)(=|$|-)/;

/**
 * `execArgv` of a worker process running `url`: this process's runtime options (loaders, memory limits) without
 * the ones that name what to run (`-e code`, `--test`, …); for a TypeScript entry, tsx's loader by absolute URL (so
 * it is found whatever the working directory) unless this process already loads it.
 */
export function workerProcessArgv(url: URL, execArgv: readonly string[] = process.execArgv): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i]!;
    const m = NOT_INHERITED.exec(a);
    if (!m) {
      kept.push(a);
      continue;
    }
    // A value given as the next item (`-e code`, `--test-reporter spec`) goes with its option.
    const next = execArgv[i + 1];
    if (
      !a.includes('=') &&
      next !== undefined &&
      (/^(-e|--eval|-p|--print)$/.test(a) || !next.startsWith('-'))
    )
      i++;
  }
  if (!needsTsx(url) || kept.some((a) => a.includes('tsx'))) return kept;
  return [...kept, '--import', import.meta.resolve('tsx')];
}

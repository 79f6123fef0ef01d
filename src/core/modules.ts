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

/** `execArgv` for a worker pool (piscina) running `url`: tsx added only for TypeScript entries. */
export function workerExecArgv(url: URL): string[] {
  if (!needsTsx(url) || process.execArgv.some((a) => a.includes('tsx'))) return process.execArgv;
  return [...process.execArgv, '--import', 'tsx'];
}

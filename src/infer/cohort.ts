/**
 * Cohorts: a manifest of slides, each segmented into its own folder `<out>/<name>/`. A slide's outputs are written
 * to a temporary folder and renamed into place only when complete, so a folder that exists is finished (a rerun
 * skips it) and an interrupted slide leaves nothing but a `.tmp-` folder, removed when the slide is next started.
 * `inferMany` runs each slide's `inferSlide` in a worker process of its own (cohort-worker.ts), given the options
 * directly.
 */

import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { siblingModule, workerProcessArgv } from '../core/modules.ts';
import type { CohortWorkerJob, CohortWorkerReply } from './cohort-worker.ts';
import { type InferSlideOptions, type InferSummary, inferSlide, slideBaseName } from './slide-infer.ts';

export interface ManifestEntry {
  slide: string;
  name: string;
}

/** Reads `slide[,name]` CSV (header required); relative slide paths are relative to the manifest. */
export async function readManifest(path: string): Promise<ManifestEntry[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read manifest (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.startsWith('#'));
  const header = (lines.shift() ?? '').split(',').map((h) => h.trim().toLowerCase());
  const si = header.indexOf('slide');
  const ni = header.indexOf('name');
  if (si < 0)
    throw new Error(`${path}: manifest header must have a 'slide' column (got '${header.join(',')}')`);
  const seen = new Set<string>();
  return lines.map((line, i) => {
    const cells = line.split(',').map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
    const slide = cells[si];
    if (!slide) throw new Error(`${path}: line ${i + 2} has no slide`);
    const abs = isAbsolute(slide) || /^https?:\/\//.test(slide) ? slide : resolve(dirname(path), slide);
    const name = (ni >= 0 && cells[ni]) || slideBaseName(slide);
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`${path}: line ${i + 2}: invalid name '${name}'`);
    if (seen.has(name)) throw new Error(`${path}: line ${i + 2}: duplicate name '${name}'`);
    seen.add(name);
    return { slide: abs, name };
  });
}

export type SlideJobOptions = Omit<InferSlideOptions, 'out' | 'name' | 'resume'>;

export interface SlideJobResult {
  name: string;
  status: 'done' | 'skipped';
  summary?: InferSummary;
}

/** True when the slide's final folder exists (it is only ever created by a rename of a complete one). */
export function slideFinished(outDir: string, name: string): boolean {
  return existsSync(join(outDir, name, `${name}.summary.json`));
}

/** Removes temporary folders of earlier, interrupted attempts at this slide. */
async function removeStaleTemps(outDir: string, name: string): Promise<void> {
  const prefix = `.tmp-${name}-`;
  for (const entry of await readdir(outDir).catch(() => [] as string[])) {
    if (entry.startsWith(prefix)) await rm(join(outDir, entry), { recursive: true, force: true });
  }
}

/**
 * Segments one slide of a cohort idempotently: skipped when finished; otherwise written to a temporary folder and
 * renamed to `<outDir>/<name>`. Each completion is appended to `<outDir>/completions.log` (one line per slide run).
 */
export async function runSlideJob(
  entry: ManifestEntry,
  outDir: string,
  options: SlideJobOptions,
): Promise<SlideJobResult> {
  await mkdir(outDir, { recursive: true });
  if (slideFinished(outDir, entry.name)) return { name: entry.name, status: 'skipped' };
  await removeStaleTemps(outDir, entry.name);
  const tmp = join(outDir, `.tmp-${entry.name}-${process.pid}-${Date.now().toString(36)}`);
  try {
    const summary = await inferSlide(entry.slide, { ...options, out: tmp, name: entry.name });
    // The ONNX export cache is per run; the finished folder holds the results only.
    await rm(join(tmp, '.cache'), { recursive: true, force: true });
    if (slideFinished(outDir, entry.name)) {
      await rm(tmp, { recursive: true, force: true });
      return { name: entry.name, status: 'skipped' };
    }
    await rename(tmp, join(outDir, entry.name));
    await appendFile(
      join(outDir, 'completions.log'),
      `${entry.name}\t${process.pid}\t${new Date().toISOString()}\n`,
    );
    return { name: entry.name, status: 'done', summary };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}

export interface InferManyOptions {
  /**
   * How each slide is segmented (model, mpp, tile, …), as for `inferSlide`. Sent to the worker processes as data:
   * callbacks, `signal` and `runner` stay in this process and are not used.
   */
  options: SlideJobOptions;
  /** Worker processes running at once (default 1). */
  workers?: number;
  log?: (line: string) => void;
}

export interface InferManyResult {
  done: string[];
  skipped: string[];
  failed: { name: string; error: string }[];
}

const WORKER = siblingModule(import.meta.url, 'cohort-worker');

/** Runs a manifest on this machine with N worker processes, one slide each at a time (a fresh process per slide). */
export async function inferMany(
  manifest: string,
  outDir: string,
  o: InferManyOptions,
): Promise<InferManyResult> {
  const entries = await readManifest(manifest);
  const workers = o.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1)
    throw new Error(`workers must be a positive integer, got ${workers}`);
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const options = plainOptions(o.options);
  await mkdir(outDir, { recursive: true });
  const result: InferManyResult = { done: [], skipped: [], failed: [] };
  const todo = entries.filter((e) => {
    if (!slideFinished(outDir, e.name)) return true;
    result.skipped.push(e.name);
    return false;
  });
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < todo.length) {
      const entry = todo[next++]!;
      await removeStaleTemps(outDir, entry.name);
      const tmp = join(outDir, `.tmp-${entry.name}-${process.pid}-${next}`);
      const err = await runWorkerProcess({ slide: entry.slide, out: tmp, name: entry.name, options });
      if (err) {
        await rm(tmp, { recursive: true, force: true });
        result.failed.push({ name: entry.name, error: err });
        log(`infer-many: ${entry.name} failed: ${err}`);
        continue;
      }
      await rm(join(tmp, '.cache'), { recursive: true, force: true });
      await rename(tmp, join(outDir, entry.name));
      await appendFile(
        join(outDir, 'completions.log'),
        `${entry.name}\t${process.pid}\t${new Date().toISOString()}\n`,
      );
      result.done.push(entry.name);
      const finished = result.done.length + result.failed.length;
      const rate = finished / ((performance.now() - started) / 1000);
      log(
        `infer-many: ${finished}/${todo.length} slides (${rate.toFixed(3)} slides/s, ETA ${((todo.length - finished) / rate).toFixed(0)}s)`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(workers, todo.length) }, lane));
  return result;
}

/** The options without what cannot cross a process boundary (callbacks, the abort signal, a loaded runner, a clock). */
function plainOptions(o: SlideJobOptions): SlideJobOptions {
  const {
    signal: _signal,
    onProgress: _onProgress,
    onTile: _onTile,
    log: _log,
    runner: _runner,
    clock: _clock,
    ...data
  } = o;
  return data;
}

/** Segments one slide in a fresh worker process; resolves to null on success or the reason it failed. */
function runWorkerProcess(job: CohortWorkerJob): Promise<string | null> {
  return new Promise((resolveRun) => {
    const child = fork(fileURLToPath(WORKER), [], {
      execArgv: workerProcessArgv(WORKER),
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let reply: CohortWorkerReply | undefined;
    // A crash's reason is the last error line on stderr (Node ends an uncaught exception with its version).
    let last = '';
    child.stderr?.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        const t = line.trim();
        if (t && !/^(Node\.js v\d|at )/.test(t) && (/error/i.test(t) || !/error/i.test(last))) last = t;
      }
    });
    child.on('message', (m: CohortWorkerReply) => {
      reply = m;
    });
    child.on('error', (e) => resolveRun(e.message));
    child.on('close', (code, signal) => {
      if (reply && 'ok' in reply && code === 0) resolveRun(null);
      else if (reply && 'error' in reply) resolveRun(reply.error);
      else if (signal) resolveRun(`worker process killed by ${signal}`);
      else resolveRun(last || `worker process exit code ${code}`);
    });
    child.send(job);
  });
}

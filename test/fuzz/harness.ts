/**
 * Runs fuzz cases through probe processes (test/fuzz/probe.ts) with a time and memory limit per case and sorts
 * every outcome: clean error, unchanged pixels, silent change, or a failure (crash, hang, excess memory, an error
 * that is not one line naming the input, an expected error that did not come).
 *
 * Probes are long-lived (`--serve`) so that a case costs a read, not a Node start; a probe that crashes, hangs or
 * exceeds the memory limit is killed and replaced, and probes are recycled every `recycleAfter` cases so that
 * memory one case leaves behind cannot be blamed on the next. `isolate: true` starts one process per case instead.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { ROOT } from '../fixtures.ts';
import { caseDir, type FuzzCase, type Seed } from './cases.ts';
import type { ProbeAnswer } from './probe.ts';

export type Outcome =
  | 'clean-error'
  | 'unchanged'
  | 'silent-change'
  | 'crash'
  | 'hang'
  | 'excess-memory'
  | 'unclean-error'
  | 'missed-error';

export const FAILURES: readonly Outcome[] = [
  'crash',
  'hang',
  'excess-memory',
  'unclean-error',
  'missed-error',
];

export interface CaseResult {
  id: string;
  description: string;
  outcome: Outcome;
  detail: string;
  ms: number;
  peakMiB: number;
}

export interface FuzzOptions {
  /** Probe processes run in parallel (default 2). */
  workers?: number;
  /** CPU-time limit per case (default 30 s; 4x as much wall time at most). */
  timeoutMs?: number;
  /** Resident memory limit per probe (default 1024 MiB); the V8 heap is capped below it too. */
  memoryMiB?: number;
  /** One process per case (slow, fully isolated) instead of pooled probes. */
  isolate?: boolean;
  recycleAfter?: number;
  onResult?: (r: CaseResult, done: number, total: number) => void;
}

export interface FuzzReport {
  tried: number;
  counts: Record<Outcome, number>;
  failures: CaseResult[];
  silentChanges: CaseResult[];
  results: CaseResult[];
}

/** Current resident set size of a process in MiB (Linux /proc), or 0 when unknown. */
async function rssMiB(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)/.exec(status);
    return kb ? Math.round(Number(kb[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

/** CPU time (user + system) a process has used, in ms (Linux /proc, 100 ticks per second), or 0 when unknown. */
async function cpuMs(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

class Probe {
  readonly child: ChildProcess;
  readonly lines: Interface;
  private readonly waiting: ((line: string | null) => void)[] = [];
  private readonly buffered: string[] = [];
  stderr = '';
  exited = false;
  served = 0;

  constructor(memoryMiB: number, args: string[]) {
    const heap = Math.max(128, Math.floor(memoryMiB * 0.6));
    this.child = spawn(
      process.execPath,
      [`--max-old-space-size=${heap}`, '--import', 'tsx', join(ROOT, 'test', 'fuzz', 'probe.ts'), ...args],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.child.stderr?.on('data', (d) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
    this.child.stdin?.on('error', () => {}); // a dead probe's pipe: seen as an exit below
    this.lines = createInterface({ input: this.child.stdout as NodeJS.ReadableStream });
    this.lines.on('line', (line) => {
      const w = this.waiting.shift();
      if (w) w(line);
      else this.buffered.push(line);
    });
    this.child.on('exit', () => {
      this.exited = true;
      for (const w of this.waiting.splice(0)) w(null);
    });
  }

  nextLine(): Promise<string | null> {
    const b = this.buffered.shift();
    if (b !== undefined) return Promise.resolve(b);
    if (this.exited) return Promise.resolve(null);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

/** Asks `probe` about `path`, watching time and memory; the probe is killed when a limit is hit. */
async function ask(
  probe: Probe,
  path: string | null,
  timeoutMs: number,
  memoryMiB: number,
): Promise<{ answer: ProbeAnswer | null; outcome?: Outcome; detail?: string; peakMiB: number }> {
  if (path !== null) probe.child.stdin?.write(`${path}\n`);
  let peak = 0;
  let verdict: { outcome: Outcome; detail: string } | null = null;
  const watch = setInterval(async () => {
    const rss = await rssMiB(probe.child.pid);
    peak = Math.max(peak, rss);
    if (rss > memoryMiB && !verdict) {
      verdict = {
        outcome: 'excess-memory',
        detail: `resident memory reached ${rss} MiB (limit ${memoryMiB})`,
      };
      probe.kill();
    }
  }, 50);
  // A hang is a case that burns `timeoutMs` of CPU, or sits 4 x `timeoutMs` of wall time: on a loaded machine (a
  // niced long run beside other work) wall time alone would blame the reader for the scheduler.
  const cpuAtStart = await cpuMs(probe.child.pid);
  const started = Date.now();
  const timer = setInterval(async () => {
    const cpu = (await cpuMs(probe.child.pid)) - cpuAtStart;
    const wall = Date.now() - started;
    if ((cpu > timeoutMs || wall > 4 * timeoutMs) && !verdict) {
      verdict = { outcome: 'hang', detail: `no answer after ${cpu} ms of CPU, ${wall} ms of wall time` };
      probe.kill();
    }
  }, 250);
  const line = await probe.nextLine();
  clearInterval(watch);
  clearInterval(timer);
  if (verdict) return { answer: null, ...(verdict as { outcome: Outcome; detail: string }), peakMiB: peak };
  if (line === null) {
    const tail = probe.stderr.trim().split('\n').slice(-3).join(' | ');
    return { answer: null, outcome: 'crash', detail: `probe exited: ${tail}`, peakMiB: peak };
  }
  const answer = JSON.parse(line) as ProbeAnswer;
  return { answer, peakMiB: Math.max(peak, path === null ? answer.peakMiB : 0) };
}

function classify(
  c: FuzzCase,
  path: string,
  answer: ProbeAnswer,
  reference: string | undefined,
): [Outcome, string] {
  if (!answer.ok) {
    const msg = answer.error ?? '';
    const clean = msg.startsWith(path) && !msg.includes('\n') && msg.length < 1000;
    return [clean ? 'clean-error' : 'unclean-error', msg.slice(0, 300)];
  }
  if (c.expect === 'error') return ['missed-error', `read pixels (${answer.levels}) where an error was due`];
  if (reference !== undefined && answer.hash === reference) return ['unchanged', answer.levels ?? ''];
  return ['silent-change', answer.levels ?? ''];
}

/** Runs the cases; `seeds` are probed first (unmutated) for the reference pixel hashes. */
export async function runFuzz(cases: FuzzCase[], seeds: Seed[], opts: FuzzOptions = {}): Promise<FuzzReport> {
  const workers = Math.max(1, opts.workers ?? 2);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const memoryMiB = opts.memoryMiB ?? 1024;
  const recycleAfter = opts.recycleAfter ?? 100;
  const work = await mkdtemp(join(tmpdir(), 'slideseg-fuzz-'));
  const results: CaseResult[] = [];
  try {
    // Reference hashes of the unmutated seeds that the cases use.
    const used = new Set(cases.map((c) => c.seed).filter((s): s is string => s !== null));
    const references = new Map<string, string>();
    {
      const probe = new Probe(memoryMiB, ['--serve']);
      try {
        for (const seed of seeds.filter((s) => used.has(s.name))) {
          const path = await seed.materialise(await caseDir(work, `seed-${seed.name}`));
          const asked = await ask(probe, path, Math.max(timeoutMs * 4, 120_000), memoryMiB);
          const answer = asked.answer;
          if (!answer?.ok || !answer.hash)
            throw new Error(`seed ${seed.name} does not read cleanly: ${answer?.error ?? asked.detail}`);
          references.set(seed.name, answer.hash);
        }
      } finally {
        probe.kill();
        probe.child.stdin?.end();
      }
    }

    let next = 0;
    const runWorker = async () => {
      let probe: Probe | null = null;
      try {
        while (next < cases.length) {
          const c = cases[next++];
          const dir = await caseDir(work, c.id);
          const path = await c.build(dir);
          if (opts.isolate) {
            probe?.kill();
            probe = new Probe(memoryMiB, [path]);
          } else if (!probe || probe.exited || probe.served >= recycleAfter) {
            probe?.kill();
            probe = new Probe(memoryMiB, ['--serve']);
          }
          const started = Date.now();
          const asked = await ask(probe, opts.isolate ? null : path, timeoutMs, memoryMiB);
          probe.served++;
          let outcome: Outcome;
          let detail: string;
          if (asked.answer)
            [outcome, detail] = classify(c, path, asked.answer, c.seed ? references.get(c.seed) : undefined);
          else [outcome, detail] = [asked.outcome as Outcome, asked.detail ?? ''];
          if (asked.answer && asked.peakMiB > memoryMiB) {
            outcome = 'excess-memory';
            detail = `peak resident memory ${asked.peakMiB} MiB (limit ${memoryMiB})`;
          }
          if (outcome === 'crash' || outcome === 'hang' || outcome === 'excess-memory') probe = null;
          const result = {
            id: c.id,
            description: c.description,
            outcome,
            detail,
            ms: Date.now() - started,
            peakMiB: asked.peakMiB,
          };
          results.push(result);
          opts.onResult?.(result, results.length, cases.length);
          await rm(dir, { recursive: true, force: true });
        }
      } finally {
        probe?.kill();
      }
    };
    await Promise.all(Array.from({ length: Math.min(workers, cases.length) }, runWorker));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const counts = Object.fromEntries(
    (['clean-error', 'unchanged', 'silent-change', ...FAILURES] as Outcome[]).map((o) => [o, 0]),
  ) as Record<Outcome, number>;
  for (const r of results) counts[r.outcome]++;
  return {
    tried: results.length,
    counts,
    failures: results.filter((r) => FAILURES.includes(r.outcome)),
    silentChanges: results.filter((r) => r.outcome === 'silent-change'),
    results,
  };
}

/** One line of figures: cases tried / clean errors / crashes / hangs / excess memory / silent changes. */
export function summary(report: FuzzReport): string {
  const c = report.counts;
  return (
    `${report.tried} cases: ${c['clean-error']} clean errors, ${c.unchanged} unchanged pixels, ` +
    `${c['silent-change']} silent changes, ${c.crash} crashes, ${c.hang} hangs, ${c['excess-memory']} excess memory, ` +
    `${c['unclean-error']} unclean errors, ${c['missed-error']} missed errors`
  );
}

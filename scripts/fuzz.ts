/**
 * Fuzzes the slide readers: seeded mutations of the TIFF/SVS and OME-Zarr fixtures plus the crafted cases of
 * issue 12, each read by a probe process under a time and memory limit (see test/fuzz/harness.ts).
 *
 * Usage: tsx scripts/fuzz.ts [--cases 2000] [--seed 1] [--workers 2] [--timeout-ms 30000] [--memory-mib 1024]
 *                            [--isolate] [--report fuzz-report.json] [--quiet]
 * Prints one line per failure as it happens and a summary at the end; exits 1 when any case crashed, hung,
 * exceeded the memory limit, gave an unclean error or missed an expected error.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { availableSeeds, makeCases } from '../test/fuzz/cases.ts';
import { FAILURES, runFuzz, summary } from '../test/fuzz/harness.ts';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '2000' },
    seed: { type: 'string', default: '1' },
    workers: { type: 'string', default: '2' },
    'timeout-ms': { type: 'string', default: '30000' },
    'memory-mib': { type: 'string', default: '1024' },
    isolate: { type: 'boolean', default: false },
    report: { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
});

function positiveInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(`fuzz: --${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const count = positiveInt('cases', values.cases as string);
const seed = positiveInt('seed', values.seed as string);
const seeds = availableSeeds();
const cases = makeCases(seed, count, seeds);
const started = Date.now();
console.log(`fuzz: ${count} cases, seed ${seed}, seeds: ${seeds.map((s) => s.name).join(', ')}`);
const report = await runFuzz(cases, seeds, {
  workers: positiveInt('workers', values.workers as string),
  timeoutMs: positiveInt('timeout-ms', values['timeout-ms'] as string),
  memoryMiB: positiveInt('memory-mib', values['memory-mib'] as string),
  isolate: values.isolate,
  onResult: (r, done, total) => {
    if (FAILURES.includes(r.outcome)) console.log(`FAIL ${r.outcome} ${r.id}: ${r.description}: ${r.detail}`);
    else if (!values.quiet && done % 100 === 0)
      console.log(`  ${done}/${total} (${Math.round((Date.now() - started) / 1000)} s)`);
  },
});
const peak = Math.max(0, ...report.results.map((r) => r.peakMiB));
const slowest = Math.max(0, ...report.results.map((r) => r.ms));
console.log(
  `fuzz: ${summary(report)}; slowest case ${slowest} ms, peak probe memory ${peak} MiB, ${Math.round((Date.now() - started) / 1000)} s`,
);
if (values.report) await writeFile(values.report, `${JSON.stringify(report, null, 2)}\n`);
process.exitCode = report.failures.length > 0 ? 1 : 0;

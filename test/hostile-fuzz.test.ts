/**
 * A short fuzz run in the normal suite: 40 seeded cases (the crafted inputs of issue 12 and mutations of the
 * TIFF/SVS and OME-Zarr seeds present here), each read by a probe process under a 30 s / 1 GiB limit. Every case
 * must end as a clean one-line error naming the input or as pixels; none may crash, hang, exceed the memory limit,
 * or read pixels where an error is due. Silent changes (a mutation inside compressed tile data that still decodes)
 * are reported, not failed: TIFF and Zarr carry no checksums, so such changes are undetectable by design.
 * The long run is `tsx scripts/fuzz.ts --cases 2000`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { availableSeeds, makeCases } from './fuzz/cases.ts';
import { runFuzz, summary } from './fuzz/harness.ts';

test('fuzz: 40 seeded hostile inputs end as clean errors or pixels', { timeout: 300_000 }, async (t) => {
  const seeds = availableSeeds();
  const cases = makeCases(12, 40, seeds);
  const report = await runFuzz(cases, seeds, { workers: 2, timeoutMs: 30_000, memoryMiB: 1024 });
  t.diagnostic(summary(report));
  for (const f of report.failures) t.diagnostic(`${f.outcome} ${f.id}: ${f.description}: ${f.detail}`);
  for (const s of report.silentChanges) t.diagnostic(`silent change ${s.id}: ${s.description}`);
  assert.equal(report.tried, 40);
  assert.deepEqual(
    report.failures.map((f) => `${f.outcome} ${f.id}`),
    [],
    'no crash, hang, excess memory, unclean or missed error',
  );
  // The run exercised both sides: the crafted cases are errors, and some mutations still read the same pixels.
  assert.ok(report.counts['clean-error'] >= 5, summary(report));
  assert.ok(report.counts.unchanged >= 1, summary(report));
  for (const crafted of report.results.filter((r) => r.id.startsWith('crafted-')))
    assert.equal(crafted.outcome, 'clean-error', `${crafted.id}: ${crafted.detail}`);
});

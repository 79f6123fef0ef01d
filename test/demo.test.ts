/**
 * `slideseg demo` end to end through the CLI (the README's first command), on a short schedule: tissue, online
 * patches with weak labels, training, whole-slide inference and a report whose pictures exist.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from './fixtures.ts';

test('slideseg demo: report with pictures and a trained model, on a short schedule', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'slideseg-demo-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  const { stderr } = await promisify(execFile)(
    process.execPath,
    [join(ROOT, 'bin', 'slideseg.js'), 'demo', '--out', out, '--steps', '6', '--patches', '24'],
    { cwd: ROOT },
  );
  assert.match(stderr, /demo finished in \d+ s/);
  const report = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(report, /\| training \| 6 steps, batch 8/);
  // Every picture the report links exists.
  const pictures = [...report.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]!);
  assert.ok(pictures.length >= 5, `${pictures.length} pictures`);
  for (const p of pictures) assert.ok(existsSync(join(out, p)), `${p} exists`);
  assert.ok(existsSync(join(out, 'run', 'model', 'model.safetensors')), 'the trained model');
});

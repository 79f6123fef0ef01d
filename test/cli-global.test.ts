import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { fixture, ROOT } from './fixtures.ts';

const run = promisify(execFile);
const CLI = join(ROOT, 'bin', 'slideseg.js');

test('--backend and --verbose are global: accepted by every command, the backend is reported', async () => {
  const { stdout, stderr } = await run(process.execPath, [CLI, 'backends', '--backend', 'cpu', '--verbose']);
  assert.match(stdout, /active: cpu/);
  assert.match(stderr, /TF\.js backend cpu/);
  // A command that never touches tensors still accepts the global options.
  const info = await run(process.execPath, [
    CLI,
    'info',
    fixture('slides', 'cmu-1-small-region.svs'),
    '--backend=cpu',
    '--json',
  ]);
  assert.equal(JSON.parse(info.stdout).levels.length, 1);
});

test('a bad global option fails with one line and a non-zero exit', async () => {
  await assert.rejects(
    run(process.execPath, [CLI, 'backends', '--backend', 'nope']),
    (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /unknown backend 'nope'/);
      return true;
    },
  );
  const help = await run(process.execPath, [CLI, '--help']);
  assert.match(help.stdout, /Global options: --backend/);
});

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
  assert.match(stdout, /^JPEG tiles: (libturbojpeg \(.+\)|sharp\/libvips \(libturbojpeg not found.*)$/m);
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

/** Runs the CLI expecting a usage error: exit 2 and one line on stderr matching `message`. */
async function usageError(args: string[], message: RegExp): Promise<void> {
  await assert.rejects(run(process.execPath, [CLI, ...args]), (e: { code: number; stderr: string }) => {
    assert.equal(e.code, 2, `exit code of slideseg ${args.join(' ')}`);
    assert.equal(e.stderr.trim().split('\n').length, 1, `one line: ${e.stderr}`);
    assert.match(e.stderr, message);
    return true;
  });
}

test('a bad global option is a usage error: one line, exit 2', async () => {
  await usageError(
    ['backends', '--backend', 'nope'],
    /--backend: expected wasm, cpu or tensorflow, got 'nope'/,
  );
  const help = await run(process.execPath, [CLI, '--help']);
  assert.match(help.stdout, /Global options: --backend/);
});

test('usage errors exit 2 with a suggestion; plain slideseg prints help and exits 0', async () => {
  const plain = await run(process.execPath, [CLI]);
  assert.match(plain.stdout, /Usage: slideseg <command>/);
  assert.match(plain.stdout, /^ {2}infer {2,}Segment a whole slide/m);
  await usageError(['infr'], /unknown command 'infr' \(did you mean info\?\)/);
  const slide = fixture('slides', 'cmu-1-small-region.svs');
  await usageError(['info', slide, '--jsn'], /unknown option --jsn \(did you mean --json\?\)/);
  // A flag renamed so that --out always names a folder says what it is now.
  await usageError(['region', slide, '--out', 'x.png'], /--out is now --png FILE/);
  await usageError(['patches', slide, '--workers', '2'], /--workers is now --decode-threads N/);
  await usageError(['info'], /usage: slideseg info SLIDE/);
  const version = await run(process.execPath, [CLI, '--version']);
  assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+$/);
});

test('every command has --help, printed without loading the command', async () => {
  const { COMMANDS } = await import('../src/cli/registry.ts');
  for (const name of Object.keys(COMMANDS)) {
    const { stdout } = await run(process.execPath, [CLI, name, '--help']);
    assert.match(stdout, new RegExp(`slideseg ${name}\\b`), `${name} --help shows its usage`);
  }
});

test('--json gives machine-readable results', async () => {
  const predict = await run(process.execPath, [
    CLI,
    'predict',
    '--model',
    fixture('segformer', 'segformer-tiny'),
    fixture('segformer', 'segformer-tiny', 'image0.png'),
    '--json',
    '--backend',
    'cpu',
  ]);
  const r = JSON.parse(predict.stdout) as {
    width: number;
    height: number;
    counts: number[];
    labels: string[];
  };
  assert.equal(
    r.counts.reduce((a, b) => a + b, 0),
    r.width * r.height,
    'every pixel counted once',
  );
  assert.equal(r.counts.length, r.labels.length);
});

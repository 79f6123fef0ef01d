/** `slideseg info` and `slideseg region`: run in-process (fast), plus one real process for the exit code. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { command as info } from '../src/cli/commands/info.ts';
import { command as region } from '../src/cli/commands/region.ts';
import { fixture, needs, ROOT } from './fixtures.ts';
import { compareRgba, readPng } from './slide-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'slideseg-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function captureStdout(fn: () => Promise<unknown>): Promise<string> {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(' '));
  try {
    await fn();
  } finally {
    console.log = original;
  }
  return lines.join('\n');
}

describe('slide CLI', () => {
  test('info --json', { skip: needs(['slides', 'tcga-cr-7395-01a-01-ts1.svs']) }, async () => {
    const out = await captureStdout(() =>
      info.run([fixture('slides', 'tcga-cr-7395-01a-01-ts1.svs'), '--json']),
    );
    const parsed = JSON.parse(out);
    assert.equal(parsed.format, 'aperio-svs');
    assert.deepEqual(
      parsed.levels.map((l: { width: number; height: number }) => [l.width, l.height]),
      [
        [4443, 3567],
        [2221, 1783],
      ],
    );
    assert.deepEqual(parsed.associatedImages, ['thumbnail']);
  });

  test('info as text lists the levels', async () => {
    const out = await captureStdout(() => info.run([fixture('slides', 'cmu-1-small-region.svs')]));
    assert.match(out, /format: aperio-svs/);
    assert.match(out, /level 0: 2220 x 2967 {2}downsample 1 {2}tiles 240x240/);
    assert.match(out, /mpp: 0\.499 x 0\.499/);
  });

  test('region writes the OpenSlide region as an RGBA PNG', async () => {
    const out = join(dir, 'r.png');
    const args = ['--x=-50', '--y=-30', '--level', '0', '--width', '200', '--height', '120', '--png', out];
    await captureStdout(() => region.run([fixture('slides', 'cmu-1-small-region.svs'), ...args]));
    const golden = await readPng(fixture('openslide', 'cmu-1-small-region', 'region-04.png'));
    const d = compareRgba(await readPng(out), golden, 0);
    assert.equal(d.bad + d.alphaMismatch, 0);
  });

  test('region rejects a non-integer coordinate', async () => {
    await assert.rejects(
      region.run([
        fixture('slides', 'cmu-1-small-region.svs'),
        '--x',
        '1.5',
        '--y',
        '0',
        '--width',
        '1',
        '--height',
        '1',
        '--png',
        join(dir, 'x.png'),
      ]),
      /--x must be an integer/,
    );
  });

  test('a bad slide exits 1 with a one-line message naming it', async () => {
    const bad = fixture('slides', 'broken.svs');
    const run = promisify(execFile);
    await assert.rejects(
      run(process.execPath, [join(ROOT, 'bin', 'slideseg.js'), 'info', bad]),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr, /broken\.svs: unrecognised slide format/);
        return true;
      },
    );
  });
});

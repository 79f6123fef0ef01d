/**
 * Numeric CLI options have ranges: absurd values (`--tile 1000000000`, `--mpp 0.00001`) are one-line usage errors
 * with exit code 2 before anything runs, and parseArgs' three-line "ambiguous" message becomes one line.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseArgs, promisify } from 'node:util';
import { UsageError } from '../src/cli/command.ts';
import { numberOption, OPTION_RANGES, parseArgsMessage } from '../src/cli/options.ts';
import { ROOT } from './fixtures.ts';

const run = promisify(execFile);
const CLI = join(ROOT, 'bin', 'slideseg.js');

describe('numberOption', () => {
  const rejects = (flag: string, raw: string, message: RegExp) =>
    assert.throws(
      () => numberOption(flag, raw),
      (e: unknown) => e instanceof UsageError && message.test(e.message) && !e.message.includes('\n'),
    );

  test('values inside the range pass through, absent flags stay undefined', () => {
    assert.equal(numberOption('tile', '512'), 512);
    assert.equal(numberOption('mpp', '0.5'), 0.5);
    assert.equal(numberOption('overlap', '0'), 0);
    assert.equal(numberOption('tile', undefined), undefined);
    assert.equal(numberOption('unlisted-flag', '-3.5'), -3.5);
  });

  test('out-of-range, fractional, empty and non-numeric values are usage errors', () => {
    rejects('tile', '1000000000', /^--tile must be an integer from 16 to 8192 pixels, got "1000000000"$/);
    rejects('tile', '256.5', /--tile must be an integer/);
    rejects('mpp', '0.00001', /^--mpp must be a number from 0.01 to 1000 µm\/pixel/);
    rejects('mpp', '-1', /--mpp must be a number from 0.01/);
    rejects('mpp', '', /--mpp must be/);
    rejects('batch', 'NaN', /--batch must be an integer from 1 to 4096/);
    rejects('unlisted-flag', 'Infinity', /--unlisted-flag must be a number, got "Infinity"/);
  });

  test('every range is satisfiable and bounded above', () => {
    for (const [flag, r] of Object.entries(OPTION_RANGES)) {
      assert.ok(r.max !== undefined && Number.isFinite(r.max), `${flag} has a maximum`);
      const lo = r.min ?? r.above ?? 0;
      assert.ok(lo <= r.max, `${flag}: ${lo} <= ${r.max}`);
      assert.equal(numberOption(flag, String(r.max)), r.max);
    }
  });

  test("parseArgs' ambiguous-value error becomes one line with the --flag=VALUE spelling", () => {
    let err: Error | undefined;
    try {
      parseArgs({ args: ['--mpp', '-1'], options: { mpp: { type: 'string' } } });
    } catch (e) {
      err = e as Error;
    }
    assert.ok(err?.message.includes('\n'), 'Node says it in several lines');
    assert.equal(
      parseArgsMessage(err as Error),
      "--mpp needs a value; write a value that starts with '-' as --mpp=VALUE",
    );
  });
});

describe('slideseg infer refuses absurd sizes before running', { timeout: 120_000 }, () => {
  for (const [flag, value, message] of [
    ['--tile', '1000000000', /--tile must be an integer from 16 to 8192 pixels/],
    ['--mpp', '0.00001', /--mpp must be a number from 0.01 to 1000/],
    ['--batch', '0', /--batch must be an integer from 1 to 4096/],
  ] as const) {
    test(`${flag} ${value}: exit 2, one line`, async () => {
      const args = [
        CLI,
        'infer',
        join(ROOT, 'samples', 'cmu-1-small-region.svs'),
        '--model',
        'none.onnx',
        '--out',
        'x',
        flag,
        value,
      ];
      await assert.rejects(run(process.execPath, args), (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 2, e.stderr);
        assert.equal(e.stderr.trim().split('\n').length, 1, e.stderr);
        assert.match(e.stderr, message);
        return true;
      });
    });
  }
});

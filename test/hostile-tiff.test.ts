/**
 * Hostile TIFF input: crafted structures fail with one clear SlideError, never an unhandled rejection that would
 * kill a long-running process (a cohort worker, a server using the library).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { openSlide, SlideError } from '../src/slide/index.ts';
import { ROOT } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'slideseg-hostile-tiff-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const SAMPLE = join(ROOT, 'samples', 'cmu-1-small-region.svs');

/**
 * The 102-byte TIFF of issue 12: two IFD entries, ImageDescription (100 chars at byte 10^6, beyond the end) and
 * StripOffsets with `stripCount` LONGs at `stripAt`. With 2^27 offsets the second entry fails its size check
 * while the first one's read is already in flight.
 */
export function craftedTwoEntryTiff(stripCount: number, stripAt: number): Uint8Array {
  const b = new Uint8Array(102);
  const v = new DataView(b.buffer);
  b.set([0x49, 0x49, 42, 0]);
  v.setUint32(4, 8, true);
  v.setUint16(8, 2, true);
  const entry = (p: number, tag: number, type: number, count: number, value: number) => {
    v.setUint16(p, tag, true);
    v.setUint16(p + 2, type, true);
    v.setUint32(p + 4, count, true);
    v.setUint32(p + 8, value, true);
  };
  entry(10, 270, 2, 100, 1e6);
  entry(22, 273, 4, stripCount, stripAt);
  v.setUint32(34, 0, true);
  return b;
}

const variants: [string, number, number][] = [
  ['2^27 strip offsets at byte 8', 2 ** 27, 8],
  ['8 strip offsets at byte 2^27', 8, 2 ** 27],
];

function oneLineSlideError(path: string) {
  return (err: unknown) => {
    assert.ok(err instanceof SlideError, `expected a SlideError, got ${err}`);
    assert.ok(err.message.startsWith(`${path}: `), `names the file: ${err.message}`);
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    return true;
  };
}

describe('crafted TIFF structures', () => {
  for (const [name, count, at] of variants) {
    test(`library: ${name} rejects once, with nothing left unhandled`, async () => {
      const path = join(dir, `crafted-${count}-${at}.tif`);
      writeFileSync(path, craftedTwoEntryTiff(count, at));
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        await assert.rejects(openSlide(path), oneLineSlideError(path));
        // Rejections left behind surface after the current macrotask.
        await new Promise((resolve) => setTimeout(resolve, 50));
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
      assert.deepEqual(unhandled, [], 'no unhandled rejection');
    });
  }

  test('a long-lived process survives the crafted TIFFs and goes on reading slides', async () => {
    const paths = variants.map(([, count, at]) => {
      const path = join(dir, `served-${count}-${at}.tif`);
      writeFileSync(path, craftedTwoEntryTiff(count, at));
      return path;
    });
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'test', 'fuzz', 'probe.ts'), '--serve'],
      {
        cwd: ROOT,
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const ask = async (path: string) => {
      child.stdin.write(`${path}\n`);
      const next = await Promise.race([
        lines.next(),
        exited.then((code) => {
          throw new Error(`probe process died (exit ${code}): ${stderr}`);
        }),
      ]);
      return JSON.parse(next.value as string) as { ok: boolean; error?: string; hash?: string };
    };
    try {
      for (const path of paths) {
        const answer = await ask(path);
        assert.equal(answer.ok, false);
        assert.ok(answer.error?.startsWith(`${path}: `), `names the file: ${answer.error}`);
        assert.ok(!answer.error?.includes('\n'));
      }
      const good = await ask(SAMPLE);
      assert.equal(good.ok, true, `reads the sample slide after the crafted ones: ${good.error}`);
      child.stdin.end();
      assert.equal(await exited, 0, `clean exit; stderr: ${stderr}`);
      assert.equal(stderr.trim(), '', 'nothing on stderr');
    } finally {
      child.kill();
    }
  });
});

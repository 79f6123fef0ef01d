/**
 * core/malloc-tuning.ts: with the tuning, a 1 MiB array no longer gets its own mmap (glibc's mallinfo2 counts the
 * bytes in mmapped chunks); SLIDESEG_MALLOC_TUNING=0 leaves glibc's defaults. Linux/glibc only (CI runs it).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { ROOT } from './fixtures.ts';

/** In a fresh process: whether the tuning applied, and how many mmapped bytes one held 4 MiB array added. */
function probe(env: Record<string, string>): { applied: boolean; mmappedGrowth: number } {
  const script = `
    import { createRequire } from 'node:module';
    import { tuneMalloc } from './src/core/malloc-tuning.ts';
    const applied = tuneMalloc();
    const koffi = createRequire(import.meta.url)('koffi');
    const Info = koffi.struct('mallinfo2_t', {
      arena: 'size_t', ordblks: 'size_t', smblks: 'size_t', hblks: 'size_t', hblkhd: 'size_t',
      usmblks: 'size_t', fsmblks: 'size_t', uordblks: 'size_t', fordblks: 'size_t', keepcost: 'size_t',
    });
    const mallinfo2 = koffi.load('libc.so.6').func('mallinfo2', Info, []);
    const before = Number(mallinfo2().hblkhd);
    const held = new Uint8Array(4 * 1024 * 1024).fill(1);
    const after = Number(mallinfo2().hblkhd);
    console.log(JSON.stringify({ applied, mmappedGrowth: after - before, check: held[7] }));`;
  return JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ...env },
    }),
  );
}

const skip = process.platform === 'linux' ? false : 'glibc malloc tuning applies on Linux only';

test('large arrays come from the reused heap once tuned, from fresh mmaps otherwise', { skip }, () => {
  const tuned = probe({});
  assert.equal(tuned.applied, true);
  assert.ok(tuned.mmappedGrowth < 1024 * 1024, `tuned: ${tuned.mmappedGrowth} bytes newly mmapped`);
  const plain = probe({ SLIDESEG_MALLOC_TUNING: '0' });
  assert.equal(plain.applied, false);
  assert.ok(plain.mmappedGrowth >= 4 * 1024 * 1024, `default: ${plain.mmappedGrowth} bytes newly mmapped`);
});

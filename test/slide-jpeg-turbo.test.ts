/**
 * JPEG tiles through libturbojpeg (codecs/jpeg-turbo.ts): the same pixels as the sharp/libvips path (and so as
 * OpenSlide, whose golden regions test/slide-openslide-parity.test.ts checks), also when many reads are in flight
 * and decodes are shared between this thread and libuv's pool; without the library, sharp decodes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { turboJpegAvailable } from '../src/slide/codecs/jpeg-turbo.ts';
import { openSlide } from '../src/slide/index.ts';
import { fixture, ROOT } from './fixtures.ts';

const SLIDE = fixture('slides', 'cmu-1-small-region.svs');
const REGIONS = Array.from({ length: 24 }, (_, i) => ({
  x: (i * 397) % 1900,
  y: (i * 613) % 2600,
  level: 0,
  width: 300,
  height: 260,
}));

function hashOf(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of each region read sequentially in a child process with the given environment. */
function childHashes(env: Record<string, string>): string[] {
  const script = `
    import { openSlide } from './src/slide/index.ts';
    import { turboJpegAvailable } from './src/slide/codecs/jpeg-turbo.ts';
    import { createHash } from 'node:crypto';
    const s = await openSlide(${JSON.stringify(SLIDE)}, { cacheBytes: 0 });
    const out = [];
    for (const r of ${JSON.stringify(REGIONS)}) {
      const px = await s.readRegion(r);
      out.push(createHash('sha256').update(px.data ?? px).digest('hex'));
    }
    await s.close();
    console.log(JSON.stringify({ turbo: turboJpegAvailable(), hashes: out }));`;
  const res = JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ...env },
    }),
  ) as { turbo: boolean; hashes: string[] };
  return [String(res.turbo), ...res.hashes];
}

// CI installs libturbojpeg (.ci/run), so there the fast path must be the one tested.
const missing = turboJpegAvailable()
  ? false
  : 'libturbojpeg is not installed (apt-get install libturbojpeg0); JPEG decodes through sharp';
if (missing && process.env.SLIDESEG_REQUIRE_FIXTURES === '1') throw new Error(`CI: ${missing}`);

test('libturbojpeg and sharp decode the sample slide to the same pixels', { skip: missing }, () => {
  const [turbo, ...withTurbo] = childHashes({});
  const [sharpTurbo, ...withSharp] = childHashes({ SLIDESEG_TURBOJPEG: 'none' });
  // Decodes into native buffers copied out, instead of straight into the tiles' arrays (see jpeg-turbo.ts).
  const [, ...copied] = childHashes({ SLIDESEG_TURBOJPEG_COPY: '1' });
  assert.deepEqual(copied, withTurbo, 'through native buffers');
  assert.equal(turbo, 'true');
  assert.equal(sharpTurbo, 'false', 'SLIDESEG_TURBOJPEG=none falls back to sharp');
  assert.deepEqual(withTurbo, withSharp);
});

test('concurrent reads (decodes shared with the thread pool) equal sequential ones', {
  skip: missing,
}, async () => {
  const sequential = await openSlide(SLIDE, { cacheBytes: 0 });
  const expected: string[] = [];
  for (const r of REGIONS) expected.push(hashOf((await sequential.readRegion(r)).data));
  await sequential.close();
  for (const workers of [0, 2]) {
    const concurrent = await openSlide(SLIDE, { cacheBytes: 0, workers });
    const got = await Promise.all(REGIONS.map(async (r) => hashOf((await concurrent.readRegion(r)).data)));
    await concurrent.close();
    assert.deepEqual(got, expected, `workers: ${workers}`);
  }
});

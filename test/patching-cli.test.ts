import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { command as patches } from '../src/cli/commands/patches.ts';
import { command as tissue } from '../src/cli/commands/tissue.ts';
import { detectTissue, openSlideByPath } from '../src/patching/index.ts';
import { fixture } from './fixtures.ts';

const SLIDE = fixture('slides', 'cmu-1-small-region.svs');

test('slideseg tissue writes the mask detectTissue computes, and an overlay of the same size', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slideseg-tissue-'));
  try {
    const out = join(dir, 'mask.png');
    const overlay = join(dir, 'overlay.png');
    assert.equal(await tissue.run([SLIDE, '--mask', out, '--overlay', overlay, '--max-size', '512']), 0);
    const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    const slide = await openSlideByPath(SLIDE);
    const expected = await detectTissue(slide, { maxSize: 512 });
    await slide.close();
    assert.deepEqual([info.width, info.height], [expected.width, expected.height]);
    assert.equal((await sharp(out).metadata()).channels, 1, 'a greyscale PNG');
    for (let i = 0; i < expected.mask.length; i++)
      assert.equal(data[i * info.channels], expected.mask[i] * 255);
    const ov = await sharp(overlay).metadata();
    assert.deepEqual([ov.width, ov.height, ov.format], [expected.width, expected.height, 'png']);
    await assert.rejects(tissue.run([SLIDE]), /--mask mask\.png is required/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('slideseg patches draws a contact sheet with one cell per patch', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slideseg-patches-'));
  try {
    const sheet = join(dir, 'sheet.png');
    const args = [
      SLIDE,
      '--sampler',
      'grid',
      '--size',
      '512',
      '--level',
      '0',
      '--preview',
      sheet,
      '--columns',
      '4',
    ];
    assert.equal(await patches.run(args), 0);
    // 2220x2967 at 512 px, no overlap: 4 x 5 = 20 tiles → 4 columns x 5 rows of 128 px cells with 4 px gaps.
    const meta = await sharp(sheet).metadata();
    assert.deepEqual([meta.width, meta.height], [4 * 132 + 4, 5 * 132 + 4]);
    await assert.rejects(patches.run([SLIDE, '--sampler', 'random']), /--count is required/);
    await assert.rejects(
      patches.run([SLIDE, '--sampler', 'spiral', '--count', '2']),
      /unknown sampler 'spiral'/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

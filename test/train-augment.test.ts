/**
 * Training augmentation: geometry applied identically to image and mask (nearest for the mask), exact crops at
 * scale 1, padding with the ignore index, seeded reproducibility, and colour/stain jitter that leave masks alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { augment, rgbToHed, type Sample } from '../src/patching/augment.ts';
import { createRng } from '../src/patching/random.ts';

const W = 160;
const H = 112;

/** 16-px blocks of two colours; the mask is 1 on the dark blocks, so it can be read back from the image. */
function blocks(): Sample {
  const image = new Uint8Array(W * H * 3);
  const mask = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const dark = ((x >> 4) * 7 + (y >> 4) * 3) % 5 < 2;
      const i = y * W + x;
      image.set(dark ? [40, 30, 120] : [230, 200, 220], i * 3);
      mask[i] = dark ? 1 : 0;
    }
  }
  return { image, mask, width: W, height: H };
}

/**
 * Pixels whose mask disagrees with the colour of the image (dark ⇔ 1), ignoring mid-tone pixels interpolated
 * across a block edge; `offEdge` counts those that are not next to a label change of the mask, which a
 * misaligned mask (one flipped or rotated differently from the image) would produce in numbers.
 */
function disagreements(s: Sample): { wrong: number; offEdge: number; clear: number } {
  let wrong = 0;
  let offEdge = 0;
  let clear = 0;
  const n = s.width;
  for (let y = 0; y < s.height; y++) {
    for (let x = 0; x < n; x++) {
      const i = y * n + x;
      const r = s.image[i * 3]!;
      if ((r > 70 && r < 200) || s.mask[i] === 255) continue; // mid-tone, or padding below scale 1
      clear++;
      if ((r <= 70 ? 1 : 0) === s.mask[i]) continue;
      wrong++;
      let edge = false;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const yy = Math.min(s.height - 1, Math.max(0, y + dy));
          const xx = Math.min(n - 1, Math.max(0, x + dx));
          if (s.mask[yy * n + xx] !== s.mask[i]) edge = true;
        }
      if (!edge) offEdge++;
    }
  }
  return { wrong, offEdge, clear };
}

test('scale 1 without flips is an exact crop of image and mask', () => {
  const s = blocks();
  const out = augment(s, { crop: 64 }, createRng(3));
  // Find the crop origin from the first row of the mask and check every pixel.
  let found = false;
  for (let y0 = 0; y0 <= H - 64 && !found; y0++) {
    for (let x0 = 0; x0 <= W - 64 && !found; x0++) {
      let same = true;
      for (let y = 0; y < 64 && same; y++)
        for (let x = 0; x < 64 && same; x++) {
          const si = (y0 + y) * W + x0 + x;
          const di = y * 64 + x;
          same =
            out.mask[di] === s.mask[si] &&
            out.image[di * 3] === s.image[si * 3] &&
            out.image[di * 3 + 2] === s.image[si * 3 + 2];
        }
      found = same;
    }
  }
  assert.ok(found, 'the output is a window of the input');
});

test('flips, rotations and rescaling move image and mask together', () => {
  const s = blocks();
  const o = { crop: 96, scale: [0.6, 1.8] as [number, number], hflip: true, vflip: true, rot90: true };
  for (let seed = 0; seed < 24; seed++) {
    const out = augment(s, o, createRng(seed));
    assert.equal(out.width, 96);
    const { wrong, offEdge, clear } = disagreements(out);
    assert.ok(clear > 96 * 96 * 0.4, `seed ${seed}: mostly clear pixels`);
    // Nearest-neighbour mask vs bilinear image can differ only along block edges, by under a pixel.
    assert.equal(offEdge, 0, `seed ${seed}: ${offEdge} disagreeing pixels away from any mask edge`);
    assert.ok(wrong < clear * 0.06, `seed ${seed}: ${wrong} of ${clear} pixels disagree`);
    assert.ok(
      out.mask.every((v) => v === 0 || v === 1 || v === 255),
      'nearest: no new label values',
    );
  }
});

test('seeded: the same seed gives the same crop, another seed another one', () => {
  const s = blocks();
  const o = { crop: 64, scale: [0.5, 2] as [number, number], hflip: true, rot90: true, stainSigma: 0.05 };
  const a = augment(s, o, createRng(11));
  const b = augment(s, o, createRng(11));
  const c = augment(s, o, createRng(12));
  assert.deepEqual(a.image, b.image);
  assert.deepEqual(a.mask, b.mask);
  assert.notDeepEqual(a.image, c.image);
  assert.deepEqual(s.mask, blocks().mask, 'the input is not modified');
});

test('a crop larger than the image is padded: image 0, mask ignoreIndex', () => {
  const s = blocks();
  const out = augment(s, { crop: 200, ignoreIndex: 255 }, createRng(0));
  assert.equal(out.mask[199], 255, 'right of the image');
  assert.equal(out.mask[199 * 200], 255, 'below the image');
  assert.equal(out.image[199 * 3], 0);
  assert.equal(out.mask[0], s.mask[0]);
});

test('colour and stain jitter change the image only; a zero stain jitter is the identity (±1)', () => {
  const s = blocks();
  const geometry = { crop: 64 };
  const plain = augment(s, geometry, createRng(5));
  const jittered = augment(
    s,
    { ...geometry, stainSigma: 0.2, brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0.05 },
    createRng(5),
  );
  assert.deepEqual(jittered.mask, plain.mask);
  assert.notDeepEqual(jittered.image, plain.image);
  const still = augment(s, { ...geometry, stainSigma: 1e-12 }, createRng(5));
  for (let i = 0; i < still.image.length; i++) assert.ok(Math.abs(still.image[i]! - plain.image[i]!) <= 1);
  // Haematoxylin dominates a blue-purple pixel, eosin a pink one (skimage's rgb2hed convention).
  const [hb, eb] = rgbToHed(40, 30, 120);
  const [hp, ep] = rgbToHed(230, 150, 200);
  assert.ok(hb > eb && ep > hp);
});

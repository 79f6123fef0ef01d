import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  detectTissue,
  detectTissueInImage,
  imageSlide,
  lowResolutionView,
  medianFilter,
  openSlideByPath,
  otsuThreshold,
  saturation,
  tissueFraction,
} from '../src/patching/index.ts';
import { createRng } from '../src/patching/random.ts';
import { fixture, needs } from './fixtures.ts';

/** Solid RGBA image filled by a per-pixel colour function. */
function paint(width: number, height: number, colour: (x: number, y: number) => [number, number, number]) {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = colour(x, y);
      data.set([r, g, b, 255], (y * width + x) * 4);
    }
  }
  return { data, width, height };
}

test('saturation follows OpenCV HSV: (max - min) / max on 0..255, 0 for black, white, grey and transparent', () => {
  const px = new Uint8Array([
    255, 0, 0, 255, 255, 255, 255, 255, 128, 128, 128, 255, 0, 0, 0, 255, 255, 128, 128, 255, 200, 0, 0, 0,
  ]);
  assert.deepEqual([...saturation(px, 6, 1, 4)], [255, 0, 0, 0, 127, 0]);
});

test('median filter equals a brute-force sorted-window median with replicated borders', () => {
  const rng = createRng(3);
  const [w, h] = [37, 23];
  const src = new Uint8Array(w * h).map(() => rng.int(256));
  for (const size of [3, 5, 7]) {
    const got = medianFilter(src, w, h, size);
    const r = size >> 1;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const win: number[] = [];
        for (let dy = -r; dy <= r; dy++) {
          for (let dx = -r; dx <= r; dx++) {
            const yy = Math.min(h - 1, Math.max(0, y + dy));
            const xx = Math.min(w - 1, Math.max(0, x + dx));
            win.push(src[yy * w + xx]);
          }
        }
        win.sort((a, b) => a - b);
        assert.equal(got[y * w + x], win[win.length >> 1], `size ${size} at ${x},${y}`);
      }
    }
  }
});

test('Otsu threshold maximises the between-class variance (checked against every split)', () => {
  const rng = createRng(11);
  const hist = new Array(256).fill(0);
  for (let i = 0; i < 5000; i++)
    hist[Math.min(255, Math.round(30 + 12 * (rng.next() + rng.next() - 1) * 3))]++;
  for (let i = 0; i < 2000; i++)
    hist[Math.min(255, Math.round(170 + 20 * (rng.next() + rng.next() - 1) * 3))]++;
  const t = otsuThreshold(hist);
  const variance = (split: number) => {
    let w0 = 0;
    let s0 = 0;
    let w1 = 0;
    let s1 = 0;
    hist.forEach((c, v) => {
      if (v <= split) {
        w0 += c;
        s0 += c * v;
      } else {
        w1 += c;
        s1 += c * v;
      }
    });
    return w0 && w1 ? w0 * w1 * (s0 / w0 - s1 / w1) ** 2 : 0;
  };
  for (let s = 0; s < 255; s++) assert.ok(variance(t) >= variance(s) - 1e-6, `split ${s} beats ${t}`);
  assert.ok(t > 60 && t < 140, `threshold ${t} between the modes`);
  assert.equal(
    otsuThreshold(Object.assign(new Array(256).fill(0), { 40: 10 })),
    40,
    'constant image: no split',
  );
});

test('a pure white slide and a noisy white slide give an empty mask', async () => {
  const white = await imageSlide(paint(800, 600, () => [255, 255, 255]));
  const t = await detectTissue(white);
  assert.equal(tissueFraction(t), 0);
  const rng = createRng(5);
  const noisy = await imageSlide(
    paint(800, 600, () => [255 - rng.int(4), 255 - rng.int(4), 252 - rng.int(4)]),
  );
  assert.equal(tissueFraction(await detectTissue(noisy)), 0);
});

test('small holes are filled, large holes kept, specks dropped, transparent pixels are background', () => {
  const [w, h] = [200, 200];
  const pink: [number, number, number] = [220, 120, 170];
  const img = paint(w, h, (x, y) => {
    const inBlock = x >= 20 && x < 160 && y >= 20 && y < 160;
    const smallHole = x >= 40 && x < 44 && y >= 40 && y < 44;
    const bigHole = x >= 80 && x < 130 && y >= 80 && y < 130;
    const speck = x >= 180 && x < 183 && y >= 180 && y < 183;
    return (inBlock && !smallHole && !bigHole) || speck ? pink : [250, 250, 250];
  });
  // Transparent (outside-the-slide) pixels with tissue colour must not count.
  for (let y = 0; y < 20; y++)
    for (let x = 170; x < 200; x++) img.data.set([220, 120, 170, 0], (y * w + x) * 4);
  const { mask } = detectTissueInImage({ ...img, channels: 4 }, 1, { medianSize: 1 });
  const at = (x: number, y: number) => mask[y * w + x];
  assert.equal(at(41, 41), 1, 'small hole filled');
  assert.equal(at(100, 100), 0, 'large hole kept');
  assert.equal(at(181, 181), 0, 'speck removed');
  assert.equal(at(30, 30), 1, 'tissue');
  assert.equal(at(185, 10), 0, 'transparent is background');
  assert.equal(at(5, 5), 0, 'background');
});

test('cmu-1-small-region: tissue fraction in a sane range, white background excluded', async () => {
  const slide = await openSlideByPath(fixture('slides', 'cmu-1-small-region.svs'));
  try {
    const t = await detectTissue(slide, { maxSize: 1024 });
    assert.equal(Math.max(t.width, t.height), 1024);
    assert.ok(Math.abs(t.downsample - slide.levels[0].width / t.width) < 1e-9);
    const fraction = tissueFraction(t);
    assert.ok(fraction > 0.15 && fraction < 0.7, `tissue fraction ${fraction}`);
    // Compare pixel statistics inside and outside the mask on the same low-resolution view.
    const { image: view } = await lowResolutionView(slide, 1024);
    assert.equal(view.width, t.width);
    let [inSat, inN, outSat, outBright, outN] = [0, 0, 0, 0, 0];
    const sat = saturation(view.data, view.width, view.height, 4);
    for (let i = 0; i < t.mask.length; i++) {
      if (t.mask[i]) {
        inSat += sat[i];
        inN++;
      } else {
        outSat += sat[i];
        outBright += (view.data[i * 4] + view.data[i * 4 + 1] + view.data[i * 4 + 2]) / 3;
        outN++;
      }
    }
    assert.ok(outBright / outN > 200, `background is bright (${outBright / outN})`);
    assert.ok(outSat / outN < t.threshold, `background is unsaturated (${outSat / outN} vs ${t.threshold})`);
    assert.ok(inSat / inN > t.threshold, `tissue is saturated (${inSat / inN} vs threshold ${t.threshold})`);
    // The left edge halfway down this slide is glass (level-0 x < 400, 1450 <= y < 1950).
    for (let y = Math.ceil(1450 / t.downsample); y < 1950 / t.downsample; y++) {
      for (let x = 0; x < 400 / t.downsample; x++)
        assert.equal(t.mask[y * t.width + x], 0, `glass at ${x},${y}`);
    }
  } finally {
    await slide.close();
  }
});

test('kidney-48-5: the one small piece of tissue is found and nothing else', {
  skip: needs(['slides', 'kidney-48-5.tif']),
}, async () => {
  const slide = await openSlideByPath(fixture('slides', 'kidney-48-5.tif'));
  const t = await detectTissue(slide);
  const fraction = tissueFraction(t);
  assert.ok(fraction > 0.002 && fraction < 0.05, `tissue fraction ${fraction}`);
  // All tissue lies in one compact blob: its bounding box is small compared with the slide.
  let [x0, y0, x1, y1] = [Infinity, Infinity, -1, -1];
  for (let i = 0; i < t.mask.length; i++) {
    if (!t.mask[i]) continue;
    const x = i % t.width;
    const y = Math.floor(i / t.width);
    [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
  }
  assert.ok((x1 - x0) * (y1 - y0) < 0.05 * t.width * t.height, `bbox ${x0},${y0}-${x1},${y1}`);
  await slide.close();
});

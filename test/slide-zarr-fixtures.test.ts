/**
 * Every OME-Zarr sample of ../shared/fixtures/zarr and derived/ opens with the right levels, shapes, dtypes and
 * mpp, and `readLevel` shows the values zarrita reads (independently, via `zarr.get` on whole levels) through
 * the documented display mapping.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as zarr from 'zarrita';
import { FolderStore, openOmeZarr } from '../src/slide/zarr/index.ts';
import { fixture, needs } from './fixtures.ts';

interface Expected {
  path: string[];
  format: 2 | 3;
  dtype: string;
  axes: string;
  /** [width, height] per level. */
  sizes: [number, number][];
  tiles: [number, number][];
  downsamples: number[];
  mpp: { x: number; y: number } | null;
  arrayPaths: string[];
}

const CASES: Expected[] = [
  {
    path: ['zarr', 'ng-simple-0.4.zarr'],
    format: 2,
    dtype: 'uint16',
    axes: 'y,x',
    sizes: [
      [10, 10],
      [5, 5],
      [2, 2],
    ],
    tiles: [
      [10, 10],
      [5, 5],
      [2, 2],
    ],
    // Scale ratios (2, 4), not size ratios (10/2 = 5): the scale is the true geometry.
    downsamples: [1, 2, 4],
    mpp: { x: 0.03, y: 0.004 },
    arrayPaths: ['scale0/image', 'scale1/image', 'scale2/image'],
  },
  {
    path: ['zarr', 'ng-simple-0.5.zarr'],
    format: 3,
    dtype: 'uint16',
    axes: 'y,x',
    sizes: [
      [10, 10],
      [5, 5],
      [2, 2],
    ],
    tiles: [
      [10, 10],
      [5, 5],
      [2, 2],
    ],
    downsamples: [1, 2, 4],
    mpp: { x: 0.03, y: 0.004 },
    arrayPaths: ['scale0/image', 'scale1/image', 'scale2/image'],
  },
  {
    path: ['zarr', 'blobs-v04.ome.zarr'],
    format: 2,
    dtype: 'float64',
    axes: 'c,y,x',
    sizes: [[12, 12]],
    tiles: [[12, 12]],
    downsamples: [1],
    mpp: null,
    arrayPaths: ['0'],
  },
  {
    path: ['zarr', 'blobs-v05.ome.zarr'],
    format: 3,
    dtype: 'float64',
    axes: 'c,y,x',
    sizes: [[12, 12]],
    tiles: [[12, 12]],
    downsamples: [1],
    mpp: null,
    arrayPaths: ['0'],
  },
  {
    path: ['zarr', 'cat.ome.zarr'],
    format: 2,
    dtype: 'float64',
    axes: 'y,x',
    sizes: [
      [451, 300],
      [225, 150],
      [112, 75],
      [56, 37],
      [28, 18],
    ],
    tiles: Array.from({ length: 5 }, () => [128, 128] as [number, number]),
    // Mean of the x and y scale ratios (non-power-of-two: 300/37 = 8.108 in y, 451/56 = 8.054 in x).
    downsamples: [
      1,
      (2 + 2.0044444444444443) / 2,
      (4 + 4.026785714285714) / 2,
      (8.108108108108109 + 8.053571428571429) / 2,
      (16.666666666666668 + 16.107142857142858) / 2,
    ],
    mpp: null,
    arrayPaths: ['0', '1', '2', '3', '4'],
  },
  {
    path: ['derived', 'cmu-1.ome.zarr'],
    format: 2,
    dtype: 'uint8',
    axes: 'c,y,x',
    sizes: [
      [1280, 1536],
      [640, 768],
      [320, 384],
      [160, 192],
    ],
    tiles: Array.from({ length: 4 }, () => [256, 256] as [number, number]),
    downsamples: [1, 2, 4, 8],
    mpp: { x: 0.499, y: 0.499 },
    arrayPaths: ['0', '1', '2', '3'],
  },
  {
    path: ['derived', 'cmu-1-5d.ome.zarr'],
    format: 2,
    dtype: 'uint8',
    axes: 't,c,z,y,x',
    sizes: [
      [1280, 1536],
      [640, 768],
      [320, 384],
      [160, 192],
    ],
    tiles: Array.from({ length: 4 }, () => [512, 512] as [number, number]),
    downsamples: [1, 2, 4, 8],
    mpp: { x: 0.499, y: 0.499 },
    arrayPaths: ['0', '1', '2', '3'],
  },
];

/** A whole level read straight with zarrita (no chunk stitching of ours), as a flat array plus strides. */
async function zarritaLevel(root: string, path: string, format: 2 | 3) {
  const loc = zarr.root(new FolderStore(root)).resolve(path);
  const arr =
    format === 2 ? await zarr.open.v2(loc, { kind: 'array' }) : await zarr.open.v3(loc, { kind: 'array' });
  const all = await zarr.get(arr);
  return {
    data: Array.from(all.data as ArrayLike<number>, Number),
    shape: all.shape,
    stride: all.stride,
    dtype: arr.dtype,
  };
}

/** The documented mapping: linear over start..end, rounded, clamped; uint8 as is. */
function display(v: number, start: number, end: number): number {
  if (!(v > start)) return 0;
  return Math.min(255, Math.round(((v - start) * 255) / (end - start)));
}

for (const c of CASES) {
  test(`OME-Zarr ${c.path.join('/')}: levels, shapes, dtype, mpp, pixels`, {
    skip: needs(c.path),
  }, async () => {
    const root = fixture(...c.path);
    const slide = await openOmeZarr(root);
    assert.equal(slide.format, 'ome-zarr');
    assert.equal(slide.source, root);
    assert.equal(slide.properties['ome-zarr.dtype'], c.dtype);
    assert.equal(slide.properties['ome-zarr.axes'], c.axes);
    assert.equal(slide.properties['ome-zarr.zarr-format'], String(c.format));
    assert.deepEqual(
      slide.levels.map((l) => [l.width, l.height]),
      c.sizes,
    );
    assert.deepEqual(
      slide.levels.map((l) => [l.tileWidth, l.tileHeight]),
      c.tiles,
    );
    slide.levels.forEach((l, i) => {
      assert.ok(Math.abs(l.downsample - c.downsamples[i]) < 1e-9, `level ${i} downsample ${l.downsample}`);
    });
    if (c.mpp === null) assert.equal(slide.mpp, null);
    else {
      assert.ok(slide.mpp);
      assert.ok(Math.abs(slide.mpp.x - c.mpp.x) < 1e-12 && Math.abs(slide.mpp.y - c.mpp.y) < 1e-12);
      assert.equal(Number(slide.properties['openslide.mpp-x']), c.mpp.x);
    }

    // Pixels: every level against zarrita's own whole-level read and the documented display mapping.
    const ranges: [number, number][] = [];
    const smallest = await zarritaLevel(root, c.arrayPaths.at(-1) as string, c.format);
    const axes = c.axes.split(',');
    const channels = axes.includes('c') ? smallest.shape[axes.indexOf('c')] : 1;
    const valueAt = (lv: Awaited<ReturnType<typeof zarritaLevel>>, ch: number, y: number, x: number) => {
      let i = 0;
      axes.forEach((a, k) => {
        const idx = a === 'x' ? x : a === 'y' ? y : a === 'c' ? ch : 0;
        i += idx * lv.stride[k];
      });
      return lv.data[i];
    };
    for (let ch = 0; ch < channels; ch++) {
      if (c.dtype === 'uint8') ranges.push([0, 255]);
      else if (c.dtype === 'uint16') ranges.push([0, 65535]);
      else {
        // Floats: min/max of the smallest level.
        const [h, w] = [smallest.shape[axes.indexOf('y')], smallest.shape[axes.indexOf('x')]];
        let lo = Infinity;
        let hi = -Infinity;
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++) {
            const v = valueAt(smallest, ch, y, x);
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
          }
        ranges.push([lo, hi]);
      }
    }
    for (const [level, path] of c.arrayPaths.entries()) {
      const ref = await zarritaLevel(root, path, c.format);
      const { width, height } = slide.levels[level];
      const img = await slide.readLevel(level, 0, 0, width, height);
      assert.equal(img.data.length, width * height * 4);
      let checked = 0;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const p = (y * width + x) * 4;
          for (let k = 0; k < 3; k++) {
            const ch = channels === 1 ? 0 : k;
            const [lo, hi] = ranges[ch];
            const want = display(valueAt(ref, ch, y, x), lo, hi);
            if (img.data[p + k] !== want) {
              assert.fail(`level ${level} (${x}, ${y}) component ${k}: ${img.data[p + k]} != ${want}`);
            }
            checked++;
          }
          assert.equal(img.data[p + 3], 255);
        }
      }
      assert.equal(checked, width * height * 3);
    }
    // A sub-rectangle crossing chunk borders equals the same pixels of the whole-level read.
    const last = slide.levels[0];
    const sub = {
      x: Math.floor(last.width / 3),
      y: Math.floor(last.height / 4),
      w: Math.ceil(last.width / 2),
      h: Math.ceil(last.height / 2),
    };
    const whole = await slide.readLevel(0, 0, 0, last.width, last.height);
    const part = await slide.readLevel(0, sub.x, sub.y, sub.w, sub.h);
    for (let y = 0; y < sub.h; y++) {
      const a = part.data.subarray(y * sub.w * 4, (y + 1) * sub.w * 4);
      const start = ((sub.y + y) * last.width + sub.x) * 4;
      assert.deepEqual(a, whole.data.subarray(start, start + sub.w * 4));
    }
    await slide.close();
    await assert.rejects(slide.readLevel(0, 0, 0, 1, 1), /close/);
  });
}

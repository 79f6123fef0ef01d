import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { rasterize, readAnnotations } from '../src/annotations/index.ts';
import {
  createRng,
  foregroundRandomSampler,
  gridSampler,
  imageSlide,
  type Patch,
  patchStream,
  randomSampler,
  type Sampler,
  saturation,
} from '../src/patching/index.ts';
import type { RGBAImage, Slide } from '../src/slide/types.ts';
import { fixture, needs } from './fixtures.ts';

const NAME = 'TCGA-B0-5698-01Z-00-DX1';

async function monusegImage(): Promise<RGBAImage> {
  const { data, info } = await sharp(fixture('monuseg', 'images', `${NAME}.tif`))
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

async function collect(stream: AsyncIterable<Patch>): Promise<Patch[]> {
  const out: Patch[] = [];
  for await (const p of stream) out.push(p);
  return out;
}

/** Wraps a slide so reads take a seeded random time and every read start and end is counted. */
function instrumented(slide: Slide, seed: number) {
  const rng = createRng(seed);
  const stats = { inFlight: 0, maxInFlight: 0, started: 0 };
  const wrapped: Slide = Object.create(slide);
  const delay = () => new Promise((r) => setTimeout(r, 1 + rng.int(15)));
  const wrap =
    <A>(read: (a: A) => Promise<RGBAImage>) =>
    async (a: A) => {
      stats.started++;
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      try {
        await delay();
        return await read(a);
      } finally {
        stats.inFlight--;
      }
    };
  Object.assign(wrapped, {
    readRegion: wrap(slide.readRegion),
    readRegionAtMpp: wrap(slide.readRegionAtMpp),
  });
  return { slide: wrapped, stats };
}

test('order and pixels are reproducible with a seed whatever the read timing and concurrency', {
  skip: needs(['monuseg']),
}, async () => {
  const base = await imageSlide(await monusegImage(), { mpp: 0.25, source: NAME });
  const run = async (concurrency: number, timingSeed: number) => {
    const { slide } = instrumented(base, timingSeed);
    return collect(
      patchStream({ slides: [slide], sampler: randomSampler({ size: 64 }), count: 24, seed: 5, concurrency }),
    );
  };
  const a = await run(1, 1);
  const b = await run(6, 2);
  assert.equal(a.length, 24);
  assert.deepEqual(
    a.map((p) => [p.x, p.y]),
    b.map((p) => [p.x, p.y]),
  );
  for (let i = 0; i < a.length; i++) assert.deepEqual(a[i].image, b[i].image);
  const other = await collect(
    patchStream({ slides: [base], sampler: randomSampler({ size: 64 }), count: 24, seed: 6 }),
  );
  assert.notDeepEqual(
    other.map((p) => [p.x, p.y]),
    a.map((p) => [p.x, p.y]),
  );
});

test('prefetch bound: reads in flight ≤ concurrency and overlap; exactly `prefetch` patches read ahead', {
  skip: needs(['monuseg']),
}, async () => {
  const base = await imageSlide(await monusegImage(), { mpp: 0.25 });
  // Reads block until the test releases them, so every count below is exact, not a matter of timing.
  const gates: Array<() => void> = [];
  const stats = { inFlight: 0, maxInFlight: 0, pulled: 0 };
  const slide: Slide = Object.create(base);
  slide.readRegion = async (req) => {
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    await new Promise<void>((r) => gates.push(r));
    stats.inFlight--;
    return base.readRegion(req);
  };
  const inner = randomSampler({ size: 32 });
  const sampler: Sampler = {
    ...inner,
    specs(ctx) {
      const it = inner.specs(ctx);
      return {
        next: () => {
          stats.pulled++;
          return it.next();
        },
      };
    },
  };
  const flush = async () => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  };
  const [count, prefetch, concurrency] = [12, 5, 3];
  const it = patchStream({ slides: [slide], sampler, count, prefetch, concurrency, seed: 1 })[
    Symbol.asyncIterator
  ]();
  let pending = it.next();
  await flush();
  assert.equal(stats.inFlight, concurrency, 'reads overlap up to the concurrency');
  assert.equal(stats.pulled, prefetch, 'prefetch patches requested before the first arrives');
  let consumed = 0;
  while (true) {
    let result: IteratorResult<Patch> | undefined;
    pending.then((r) => {
      result = r;
    });
    while (!result) {
      for (const release of gates.splice(0)) release();
      await flush();
    }
    if (result.done) break;
    consumed++;
    await flush();
    assert.equal(stats.pulled, Math.min(count, consumed + prefetch), `after patch ${consumed}`);
    pending = it.next();
  }
  assert.equal(consumed, count);
  assert.equal(stats.maxInFlight, concurrency);
});

test('patch pixels are the slide pixels (HWC RGB) and the annotation mask is aligned with them', {
  skip: needs(['monuseg']),
}, async () => {
  const rgba = await monusegImage();
  const slide = await imageSlide(rgba, { mpp: 0.25 });
  const annotations = await readAnnotations(fixture('monuseg', 'annotations', `${NAME}.xml`));
  const full = rasterize(annotations, { x: 0, y: 0, width: 1000, height: 1000 });
  const patches = await collect(
    patchStream({ slides: [slide], sampler: randomSampler({ size: 96 }), count: 12, seed: 2, annotations }),
  );
  let [inSum, inN, outSum, outN] = [0, 0, 0, 0];
  for (const p of patches) {
    assert.equal(p.image.length, 96 * 96 * 3);
    assert.ok(p.mask);
    for (let j = 0; j < 96; j++) {
      for (let i = 0; i < 96; i++) {
        const src = ((p.y + j) * 1000 + p.x + i) * 4;
        const dst = (j * 96 + i) * 3;
        assert.deepEqual([...p.image.subarray(dst, dst + 3)], [...rgba.data.subarray(src, src + 3)]);
        assert.equal(p.mask[j * 96 + i], full[(p.y + j) * 1000 + p.x + i]);
        const grey = p.image[dst] + p.image[dst + 1] + p.image[dst + 2];
        if (p.mask[j * 96 + i]) [inSum, inN] = [inSum + grey, inN + 1];
        else [outSum, outN] = [outSum + grey, outN + 1];
      }
    }
  }
  // Nuclei (haematoxylin) are darker than their surroundings: the mask sits on them.
  assert.ok(inN > 0 && inSum / inN < outSum / outN - 60, `nuclei ${inSum / inN} vs rest ${outSum / outN}`);
});

test('mask at 2x downsample (mpp 0.5 on a 0.25 slide) matches the rasterised region at that scale', {
  skip: needs(['monuseg']),
}, async () => {
  const slide = await imageSlide(await monusegImage(), { mpp: 0.25, levels: 2 });
  const annotations = await readAnnotations(fixture('monuseg', 'annotations', `${NAME}.xml`));
  const patches = await collect(
    patchStream({
      slides: [slide],
      sampler: randomSampler({ size: 128, mpp: 0.5 }),
      count: 4,
      seed: 3,
      annotations,
    }),
  );
  for (const p of patches) {
    assert.deepEqual([p.level, p.downsample, p.mpp], [1, 2, 0.5]);
    const expected = rasterize(annotations, { x: p.x, y: p.y, width: 128, height: 128, downsample: 2 });
    assert.deepEqual(p.mask, expected);
  }
});

test('several slides: grids run slide after slide, random patches mix slides; outside pixels are white', {
  skip: needs(['monuseg']),
}, async () => {
  const a = await imageSlide(await monusegImage(), { source: 'a' });
  const black = new Uint8Array(300 * 200 * 4).map((_, i) => (i % 4 === 3 ? 255 : 0));
  const tiny = await imageSlide({ data: black, width: 300, height: 200 }, { source: 'b' });
  const grid = await collect(
    patchStream({ slides: [a, tiny], sampler: gridSampler({ size: 256, includePartial: true }) }),
  );
  assert.deepEqual(
    grid.map((p) => p.slide),
    [...Array(16).fill('a'), ...Array(2).fill('b')],
  );
  // The tiny slide is opaque black; its partial tile past the edge reads white.
  const last = grid[grid.length - 1];
  assert.deepEqual([last.x, last.y], [256, 0]);
  assert.deepEqual([...last.image.subarray(0, 3)], [0, 0, 0]);
  assert.deepEqual([...last.image.subarray(100 * 3, 101 * 3)], [255, 255, 255]);
  const mixed = await collect(
    patchStream({ slides: [a, tiny], sampler: randomSampler({ size: 64 }), count: 40, seed: 4 }),
  );
  const fromB = mixed.filter((p) => p.slide === 'b').length;
  assert.ok(fromB > 5 && fromB < 35, `${fromB} of 40 from b`);
});

test('real slide: foreground random patches at 0.5 mpp from the SVS are tissue', async () => {
  const patches = await collect(
    patchStream({
      slides: [fixture('slides', 'cmu-1-small-region.svs')],
      sampler: foregroundRandomSampler({ size: 128, mpp: 0.5, minTissue: 0.8 }),
      count: 8,
      seed: 1,
      tissue: { maxSize: 1024 },
    }),
  );
  assert.equal(patches.length, 8);
  for (const p of patches) {
    assert.equal(p.mpp, 0.5);
    const rgba = new Uint8Array(128 * 128 * 4);
    for (let i = 0; i < 128 * 128; i++)
      rgba.set([p.image[i * 3], p.image[i * 3 + 1], p.image[i * 3 + 2], 255], i * 4);
    const sat = saturation(rgba, 128, 128, 4);
    const tissuePixels = sat.filter((s) => s > 25).length / sat.length;
    assert.ok(tissuePixels > 0.4, `patch at ${p.x},${p.y}: ${tissuePixels} saturated`);
  }
});

test('errors: endless sampler without count, bad prefetch, unreadable slide, read failures reach the consumer', async () => {
  const slide = await imageSlide({ data: new Uint8Array(64 * 64 * 4), width: 64, height: 64 });
  await assert.rejects(
    collect(patchStream({ slides: [slide], sampler: randomSampler({ size: 8 }) })),
    /never ends; give a count/,
  );
  await assert.rejects(
    collect(patchStream({ slides: [slide], sampler: randomSampler({ size: 8 }), count: 1, prefetch: 0 })),
    /prefetch must be a positive integer/,
  );
  await assert.rejects(
    collect(patchStream({ slides: [fixture('slides', 'broken.svs')], sampler: randomSampler(), count: 1 })),
    /broken\.svs/,
  );
  const failing: Slide = Object.create(slide);
  let reads = 0;
  failing.readRegion = async (req) => {
    if (++reads === 3) throw new Error('disk on fire');
    return slide.readRegion(req);
  };
  const got: Patch[] = [];
  await assert.rejects(async () => {
    for await (const p of patchStream({
      slides: [failing],
      sampler: randomSampler({ size: 8 }),
      count: 10,
      seed: 0,
    }))
      got.push(p);
  }, /disk on fire/);
  assert.equal(got.length, 2, 'the patches before the failure were delivered');
});

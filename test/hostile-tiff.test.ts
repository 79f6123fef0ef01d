/**
 * Hostile TIFF input: crafted structures fail with one clear SlideError, never an unhandled rejection that would
 * kill a long-running process (a cohort worker, a server using the library).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { isSlidesegError } from '../src/core/errors.ts';
import { DecodeBudget } from '../src/slide/budget.ts';
import { FileByteSource } from '../src/slide/bytesource.ts';
import { asSlideError } from '../src/slide/errors.ts';
import { openSlide, SlideError } from '../src/slide/index.ts';
import { parseTiff } from '../src/slide/tiff/ifd.ts';
import { ROOT } from './fixtures.ts';
import { craftTiff, type Entry } from './slide-helpers.ts';

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

/** A one-tile RGB TIFF whose tile holds `tileBytes` (compression as given), tile size `tile`. */
function oneTileTiff(size: number, tile: number, compression: number, tileBytes: Uint8Array): Uint8Array {
  const entries: Entry[] = [
    [256, 4, [size]],
    [257, 4, [size]],
    [258, 3, [8, 8, 8]],
    [259, 3, [compression]],
    // YCbCr for JPEG: the stream is decoded as any JPEG decoder would (no forced RGB).
    [262, 3, [compression === 7 ? 6 : 2]],
    [277, 3, [3]],
    [322, 3, [tile]],
    [323, 3, [tile]],
    [324, 4, [0]],
    [325, 4, [tileBytes.length]],
  ];
  // Lay out once to learn where the pixel data goes, then point the tile offset there.
  const probe = craftTiff(entries, { extra: tileBytes.length });
  const at = probe.length - tileBytes.length;
  entries[8] = [324, 4, [at]];
  const bytes = craftTiff(entries, { extra: tileBytes.length });
  bytes.set(tileBytes, at);
  return bytes;
}

/** A one-strip RGB TIFF of size×size pixels whose strip is `stripBytes` (StripByteCounts = its length). */
function oneStripTiff(size: number, compression: number, stripBytes: Uint8Array): Uint8Array {
  const entries: Entry[] = [
    [256, 4, [size]],
    [257, 4, [size]],
    [258, 3, [8, 8, 8]],
    [259, 3, [compression]],
    [262, 3, [2]],
    [273, 4, [0]],
    [277, 3, [3]],
    [278, 4, [size]],
    [279, 4, [stripBytes.length]],
  ];
  const probe = craftTiff(entries, { extra: stripBytes.length });
  const at = probe.length - stripBytes.length;
  entries[5] = [273, 4, [at]];
  const bytes = craftTiff(entries, { extra: stripBytes.length });
  bytes.set(stripBytes, at);
  return bytes;
}

async function readWhole(path: string): Promise<Uint8Array> {
  const slide = await openSlide(path);
  try {
    const { width, height } = slide.levels[0];
    return (await slide.readRegion({ x: 0, y: 0, level: 0, width, height })).data;
  } finally {
    await slide.close();
  }
}

/** Offset of the SOF0..SOF15 frame header marker in a JPEG stream. */
function sofOffset(jpeg: Uint8Array): number {
  for (let i = 2; i + 3 < jpeg.length; ) {
    const m = jpeg[i + 1];
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return i;
    i += 2 + ((jpeg[i + 2] << 8) | jpeg[i + 3]);
  }
  throw new Error('no SOF');
}

describe('decode budget: declared sizes checked against the TIFF before decoding', () => {
  for (const edge of [65500, 20000]) {
    test(`an SVS tile whose JPEG header claims ${edge}x${edge} is an error, not gigabytes`, async () => {
      const bytes = new Uint8Array(readFileSync(SAMPLE));
      const src = await FileByteSource.open(SAMPLE);
      const tiff = await parseTiff(src);
      await src.close();
      const ifd = tiff.ifds[0];
      const offset = (ifd.numbers(324) as number[])[0];
      const count = (ifd.numbers(325) as number[])[0];
      const sof = offset + sofOffset(bytes.subarray(offset, offset + count));
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      view.setUint16(sof + 5, edge);
      view.setUint16(sof + 7, edge);
      const path = join(dir, `sof-${edge}.svs`);
      writeFileSync(path, bytes);
      await assert.rejects(readWhole(path), (err: unknown) => {
        oneLineSlideError(path)(err);
        assert.match(
          (err as Error).message,
          new RegExp(`declares ${edge}x${edge} pixels but the TIFF block is 240x240`),
        );
        return true;
      });
    });
  }

  test('a JPEG tile smaller than the TIFF tile is an error, not padded pixels; a matching one reads right', async () => {
    const rgb = new Uint8Array(64 * 64 * 3).map((_, i) => (i * 7) & 255);
    const small = new Uint8Array(
      await sharp(rgb, { raw: { width: 64, height: 64, channels: 3 } })
        .jpeg()
        .toBuffer(),
    );
    const path = join(dir, 'small-jpeg-tile.tif');
    writeFileSync(path, oneTileTiff(128, 128, 7, small));
    await assert.rejects(readWhole(path), (err: unknown) => {
      oneLineSlideError(path)(err);
      assert.match((err as Error).message, /declares 64x64 pixels but the TIFF block is 128x128/);
      return true;
    });
    const good = join(dir, 'good-jpeg-tile.tif');
    writeFileSync(good, oneTileTiff(64, 64, 7, small));
    const pixels = await readWhole(good);
    const reference = new Uint8Array(await sharp(small).ensureAlpha().raw().toBuffer());
    assert.deepEqual(pixels, reference);
  });

  test('an uncompressed strip shorter than its size needs is an error, not zero padding', async () => {
    const path = join(dir, 'short-strip.tif');
    writeFileSync(path, oneStripTiff(16, 1, new Uint8Array(100).fill(9)));
    await assert.rejects(readWhole(path), (err: unknown) => {
      oneLineSlideError(path)(err);
      assert.match((err as Error).message, /holds 100 bytes of samples where its size needs 768/);
      return true;
    });
    const full = join(dir, 'full-strip.tif');
    writeFileSync(full, oneStripTiff(16, 1, new Uint8Array(768).fill(9)));
    const pixels = await readWhole(full);
    assert.deepEqual([pixels[0], pixels[1], pixels[2], pixels[3]], [9, 9, 9, 255]);
  });

  test('a deflate strip that inflates short or long is an error', async () => {
    for (const [name, raw, why] of [
      ['short', new Uint8Array(500), /holds 500 bytes of samples where its size needs 768/],
      ['long', new Uint8Array(4000), /expands beyond the 768 bytes/],
    ] as const) {
      const path = join(dir, `deflate-${name}.tif`);
      writeFileSync(path, oneStripTiff(16, 8, new Uint8Array(deflateSync(raw))));
      await assert.rejects(readWhole(path), (err: unknown) => {
        oneLineSlideError(path)(err);
        assert.match((err as Error).message, why);
        return true;
      });
    }
  });
});

describe('process-wide decode budget', () => {
  test('reads wait for the budget in order; one read larger than the budget fails at once', async () => {
    const budget = new DecodeBudget(100);
    const order: string[] = [];
    const a = await budget.reserve('s.svs', 60, 'a');
    const b = budget.reserve('s.svs', 60, 'b').then((release) => {
      order.push('b');
      return release;
    });
    const c = budget.reserve('s.svs', 30, 'c').then((release) => {
      order.push('c');
      return release;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(order, [], 'b waits for a; c waits behind b (first come, first served)');
    a();
    const releaseB = await b;
    const releaseC = await c;
    assert.deepEqual(order, ['b', 'c']);
    assert.equal(budget.usedBytes, 90);
    releaseB();
    releaseC();
    releaseC(); // giving back twice is harmless
    assert.equal(budget.usedBytes, 0);
    await assert.rejects(budget.reserve('s.svs', 101, 'reading 10x10 pixels'), (err: unknown) => {
      oneLineSlideError('s.svs')(err);
      assert.match(
        (err as Error).message,
        /reading 10x10 pixels needs 0 MiB of decoded pixels, more than the process limit/,
      );
      return true;
    });
  });

  test('a slide read beyond SLIDESEG_DECODE_BUDGET_MB is a clear error in a fresh process', async () => {
    const script = `import { openSlide } from ${JSON.stringify(join(ROOT, 'src/slide/index.ts'))};
      const s = await openSlide(${JSON.stringify(SAMPLE)});
      try { await s.readRegion({ x: 0, y: 0, level: 0, width: 2000, height: 2000 }); console.log('read'); }
      catch (e) { console.log(e.message); }`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      env: { ...process.env, SLIDESEG_DECODE_BUDGET_MB: '8' },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 0);
    assert.match(
      out.trim(),
      /^\S+cmu-1-small-region\.svs: reading 2000x2000 pixels needs \d+ MiB of decoded pixels, more than the process limit of 8 MiB/,
    );
  });
});

describe('one-line errors', () => {
  test('a libvips-style repeated multi-line reason becomes one line; the original error is the cause', () => {
    const vips = new Error(
      'VipsJpeg: Premature end of JPEG file\nVipsJpeg: Premature end of JPEG file\n  VipsJpeg: out of order read\n',
    );
    const err = asSlideError('slide.svs', vips);
    assert.equal(err.message, 'slide.svs: VipsJpeg: Premature end of JPEG file; VipsJpeg: out of order read');
    assert.equal(err.cause, vips);
    assert.equal(asSlideError('slide.svs', err), err, 'a SlideError stays as it is');
  });

  test('a corrupt JPEG tile of the sample slide fails with one line naming the tile', async () => {
    const bytes = new Uint8Array(readFileSync(SAMPLE));
    const src = await FileByteSource.open(SAMPLE);
    const tiff = await parseTiff(src);
    await src.close();
    const ifd = tiff.ifds[0];
    const offset = (ifd.numbers(324) as number[])[0];
    const count = (ifd.numbers(325) as number[])[0];
    // Keep the headers, cut the entropy-coded data short: libvips reports it in several lines.
    bytes.fill(0, offset + sofOffset(bytes.subarray(offset, offset + count)) + 40, offset + count);
    const path = join(dir, 'corrupt-tile.svs');
    writeFileSync(path, bytes);
    await assert.rejects(readWhole(path), (err: unknown) => {
      oneLineSlideError(path)(err);
      assert.match((err as Error).message, /cannot decode tile \(0, 0\) of IFD at byte \d+: /);
      return true;
    });
  });
});

describe('flat images', () => {
  test('a PNG whose header claims 12000x12000 pixels is refused before decoding', async () => {
    const png = new Uint8Array(
      await sharp({ create: { width: 1, height: 1, channels: 3, background: '#fff' } })
        .png()
        .toBuffer(),
    );
    // IHDR: length(4) 'IHDR'(4) width(4) height(4) ... CRC over type + data.
    const view = new DataView(png.buffer);
    view.setUint32(16, 12000);
    view.setUint32(20, 12000);
    view.setUint32(29, crc32(png.subarray(12, 29)));
    const path = join(dir, 'huge-header.png');
    writeFileSync(path, png);
    await assert.rejects(openSlide(path), (err: unknown) => {
      oneLineSlideError(path)(err);
      assert.match(
        (err as Error).message,
        /image of 12000x12000 pixels is too large to decode whole \(limit 67108864 pixels\)/,
      );
      return true;
    });
  });
});

test('slide errors belong to the error family with code "slide"', async () => {
  const err = await openSlide(join(dir, 'nope.svs')).catch((e: unknown) => e);
  assert.ok(isSlidesegError(err), String(err));
  assert.equal((err as SlideError).code, 'slide');
});

test('IFDs whose tags all point at the same megabyte cannot add up to gigabytes of tag values', async () => {
  const data = 1024 * 1024;
  const ifds = 300;
  const bytes = new Uint8Array(8 + data + ifds * 18);
  const v = new DataView(bytes.buffer);
  bytes.set([0x49, 0x49, 42, 0]);
  const first = 8 + data;
  v.setUint32(4, first, true);
  for (let i = 0; i < ifds; i++) {
    const at = first + i * 18;
    v.setUint16(at, 1, true);
    v.setUint16(at + 2, 324, true); // TileOffsets
    v.setUint16(at + 4, 4, true); // LONG
    v.setUint32(at + 6, data / 4, true);
    v.setUint32(at + 10, 8, true); // every IFD's values: the same megabyte
    v.setUint32(at + 14, i + 1 < ifds ? at + 18 : 0, true);
  }
  const path = join(dir, 'shared-values.tif');
  writeFileSync(path, bytes);
  await assert.rejects(openSlide(path), (err: unknown) => {
    oneLineSlideError(path)(err);
    assert.match((err as Error).message, /TIFF tag values add up to more than 256 MiB/);
    return true;
  });
});

test('readRegionAtMpp refuses an output size beyond the region limit before reading or resampling', async () => {
  const slide = await openSlide(SAMPLE);
  try {
    await assert.rejects(
      slide.readRegionAtMpp({ x: 0, y: 0, mpp: 1000, width: 1_000_000, height: 1_000_000 }),
      (err: unknown) => {
        oneLineSlideError(SAMPLE)(err);
        assert.match((err as Error).message, /readRegionAtMpp: 1000000x1000000 is too large/);
        return true;
      },
    );
    await assert.rejects(
      slide.readRegionAtMpp({ x: 0, y: 0, mpp: 1, width: 2.5, height: 4 }),
      /width must be a non-negative integer/,
    );
  } finally {
    await slide.close();
  }
});

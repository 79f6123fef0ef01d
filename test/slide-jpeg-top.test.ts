/**
 * Top-of-block JPEG decodes (codecs/block.ts `rowsNeeded`): where a read needs only a block's top rows, its stream's
 * frame height is lowered and libjpeg-turbo stops there. The rows kept must equal a whole decode's exactly, for every
 * row count, and reads that mix partial and whole blocks (concurrently too) must give the whole-decode pixels.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openByteSource } from '../src/slide/bytesource.ts';
import { JPEG_TOP_MARGIN_ROWS, jpegTopRows, withFrameHeight } from '../src/slide/codecs/block.ts';
import { decodeBlock } from '../src/slide/codecs/decode.ts';
import { decodeJpegTurbo, turboJpegAvailable } from '../src/slide/codecs/jpeg-turbo.ts';
import { openSlide } from '../src/slide/index.ts';
import { parseTiff } from '../src/slide/tiff/ifd.ts';
import { TiffImage } from '../src/slide/tiff/image.ts';

const SAMPLE_SVS = fileURLToPath(new URL('../samples/cmu-1-small-region.svs', import.meta.url));
// CI installs libturbojpeg (.ci/run): there the partial path must be the one tested.
const missing = turboJpegAvailable()
  ? false
  : process.env.CI
    ? false
    : 'libturbojpeg is not installed (apt-get install libturbojpeg0): JPEG blocks are always decoded whole';

test('jpegTopRows: whole MCU rows plus the margin, and only where at most 5/8 of the block is decoded', () => {
  assert.equal(jpegTopRows(1, 256), 16 + JPEG_TOP_MARGIN_ROWS);
  assert.equal(jpegTopRows(16, 256), 32);
  assert.equal(jpegTopRows(17, 256), 48);
  assert.equal(jpegTopRows(128, 256), 144);
  assert.equal(jpegTopRows(144, 256), 160);
  assert.equal(jpegTopRows(145, 256), null, '176 rows of 256 saves too little');
});

test('withFrameHeight lowers a baseline frame and refuses progressive or malformed streams', () => {
  // SOI, SOF0 (length 11: precision 8, height 256, width 256, 1 component), EOI
  const sof = (marker: number) =>
    new Uint8Array([0xff, 0xd8, 0xff, marker, 0, 11, 8, 1, 0, 1, 0, 1, 1, 0x11, 0, 0xff, 0xd9]);
  const lowered = withFrameHeight(sof(0xc0), 48);
  assert.ok(lowered);
  assert.deepEqual([lowered[7], lowered[8]], [0, 48]);
  assert.equal(sof(0xc0)[8], 0, 'the input is not modified');
  assert.equal(withFrameHeight(sof(0xc2), 48), null, 'progressive');
  assert.equal(withFrameHeight(new Uint8Array([0xff, 0xd8, 0x00, 0x00, 0, 0, 0, 0, 0, 0]), 48), null);
});

// First of the decoding tests: libjpeg-turbo keeps its last warning text per thread, so after a top decode on this
// thread a message check would read that stale text and pass; this test must see the pool's own outcome.
test('top decodes asked for together run on the pool and stay exact; a truncated block is decoded whole', {
  skip: missing,
}, async () => {
  const bytes = await openByteSource(SAMPLE_SVS);
  try {
    const tiff = await parseTiff(bytes);
    const img = new TiffImage(bytes.name, tiff.ifds[0], tiff.littleEndian, bytes.size);
    const bw = img.blockWidth;
    // Decodes asked for together run on libuv's threads, where libjpeg's warning text cannot be read: top decodes
    // must still be accepted there (not silently redone whole), and stay exact.
    const jobs = await Promise.all(
      [
        [1, 1],
        [2, 6],
        [5, 3],
        [6, 8],
      ].map(async ([col, row]) => ({
        format: img.format,
        data: await bytes.readMany(img.blockRanges(col, row)),
        width: bw,
        height: img.blockRows(row),
        maxHeight: img.blockHeight,
      })),
    );
    const wholes = await Promise.all(jobs.map((j) => decodeBlock(j)));
    const tops = await Promise.all(jobs.map((j, i) => decodeBlock({ ...j, rowsNeeded: 20 + 30 * i })));
    tops.forEach((top, i) => {
      assert.equal(
        top.byteLength / (bw * 4),
        (jpegTopRows(20 + 30 * i, 240) as number) - JPEG_TOP_MARGIN_ROWS,
        `block ${i}`,
      );
      assert.ok(Buffer.from(top).equals(Buffer.from(wholes[i].subarray(0, top.byteLength))), `block ${i}`);
    });

    // A truncated block (no EOI: its missing rows would decode as grey) is decoded whole, where that is an error.
    const cut = { ...jobs[0], data: [jobs[0].data[0].subarray(0, jobs[0].data[0].length >> 2)] };
    const whole = await decodeBlock(cut).then(
      () => 'decoded',
      (err: Error) => err.message,
    );
    const top = await decodeBlock({ ...cut, rowsNeeded: 8 }).then(
      () => 'decoded',
      (err: Error) => err.message,
    );
    assert.notEqual(whole, 'decoded', 'a truncated block is an error');
    assert.equal(top, whole, 'the same outcome with only its top rows needed');
  } finally {
    await bytes.close();
  }
});

test("every top-row count of a block decodes to exactly the whole decode's rows", {
  skip: missing,
}, async () => {
  assert.ok(turboJpegAvailable(), 'libturbojpeg is required in CI');
  const bytes = await openByteSource(SAMPLE_SVS);
  try {
    const tiff = await parseTiff(bytes);
    const img = new TiffImage(bytes.name, tiff.ifds[0], tiff.littleEndian, bytes.size);
    const bw = img.blockWidth;
    let partial = 0;
    for (const [col, row] of [
      [0, 0],
      [3, 5],
      [7, 2],
      [4, 9],
      [8, 11],
    ]) {
      const ranges = img.blockRanges(col, row);
      const data = await bytes.readMany(ranges);
      const job = {
        format: img.format,
        data,
        width: bw,
        height: img.blockRows(row),
        maxHeight: img.blockHeight,
      };
      const whole = await decodeBlock(job);
      for (let need = 1; need <= job.height; need++) {
        const top = await decodeBlock({ ...job, rowsNeeded: need });
        const rows = top.byteLength / (bw * 4);
        assert.ok(Number.isInteger(rows) && rows >= need, `block ${col},${row}: ${rows} rows for ${need}`);
        if (rows < job.height) partial++;
        assert.ok(
          Buffer.from(top).equals(Buffer.from(whole.subarray(0, top.byteLength))),
          `block ${col},${row}, ${need} rows needed: rows differ from the whole decode`,
        );
      }
    }
    // 240-px blocks: 1..128 rows needed decode 32..144 rows (at most 5/8 of 240 = 150): 128 partial decodes each.
    assert.equal(partial, 5 * 128);
  } finally {
    await bytes.close();
  }
});

test('reads mixing partial and whole blocks, concurrently, give the pixels of whole decodes', {
  skip: missing,
}, async () => {
  const reference = await openSlide(SAMPLE_SVS, { cacheBytes: 256 * 1024 * 1024 });
  const slide = await openSlide(SAMPLE_SVS, { cacheBytes: 24 * 240 * 240 * 4 });
  try {
    const { width, height } = reference.levels[0];
    const level = (await reference.readRegion({ x: 0, y: 0, level: 0, width, height })).data;
    let seed = 11;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 12; round++) {
      const regions = Array.from({ length: 8 }, () => {
        const w = 1 + rand(400);
        const h = 1 + rand(400);
        return { x: rand(width - w), y: rand(1500 - h), level: 0, width: w, height: h };
      });
      const got = await Promise.all(regions.map((r) => slide.readRegion(r)));
      got.forEach((img, i) => {
        const r = regions[i];
        const expected = new Uint8Array(r.width * r.height * 4);
        for (let yy = 0; yy < r.height; yy++) {
          const from = ((r.y + yy) * width + r.x) * 4;
          expected.set(level.subarray(from, from + r.width * 4), yy * r.width * 4);
        }
        assert.ok(
          Buffer.from(img.data).equals(Buffer.from(expected)),
          `round ${round}, region ${JSON.stringify(r)}`,
        );
      });
    }
  } finally {
    await reference.close();
    await slide.close();
  }
});

const cjpeg = ['/usr/bin/cjpeg', '/usr/local/bin/cjpeg'].find((p) => existsSync(p));
const noCjpeg =
  missing ||
  (cjpeg || process.env.CI ? false : 'cjpeg is not installed (apt-get install libjpeg-turbo-progs)');

test('top decodes are exact for every chroma sampling, with and without restart markers', {
  skip: noCjpeg,
}, async () => {
  assert.ok(cjpeg, 'cjpeg is required in CI (.ci/run installs libjpeg-turbo-progs)');
  const dir = await mkdtemp(join(tmpdir(), 'slideseg-jpeg-top-'));
  try {
    const w = 256;
    const h = 256;
    const pixels = Buffer.alloc(w * h * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7 + (i >> 9) * 13 + ((i * i) >> 15)) & 255;
    await writeFile(join(dir, 'in.ppm'), Buffer.concat([Buffer.from(`P6\n${w} ${h}\n255\n`), pixels]));
    const variants = [
      ['-sample', '2x2'],
      ['-sample', '2x1'],
      ['-sample', '1x2'],
      ['-sample', '1x1'],
      ['-grayscale'],
      ['-sample', '2x2', '-restart', '1'],
      ['-sample', '1x1', '-restart', '1B'],
    ];
    for (const args of variants) {
      execFileSync(cjpeg as string, [...args, '-outfile', join(dir, 'out.jpg'), join(dir, 'in.ppm')]);
      const jpeg = new Uint8Array(await readFile(join(dir, 'out.jpg')));
      const whole = await decodeJpegTurbo(jpeg, { width: w, height: h });
      assert.ok(whole);
      for (let need = 1; need <= 144; need += 3) {
        const rows = jpegTopRows(need, h) as number;
        const lowered = withFrameHeight(jpeg, rows);
        assert.ok(lowered, `cjpeg ${args.join(' ')}: a baseline frame`);
        const top = await decodeJpegTurbo(lowered, { width: w, height: rows }, { top: true });
        assert.ok(top);
        const kept = (rows - JPEG_TOP_MARGIN_ROWS) * w * 4;
        assert.ok(
          Buffer.from(top.rgba.subarray(0, kept)).equals(Buffer.from(whole.rgba.subarray(0, kept))),
          `cjpeg ${args.join(' ')}: ${need} rows needed`,
        );
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

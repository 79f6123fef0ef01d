/**
 * Cohorts on one machine (`inferMany`): every slide segmented by `inferSlide` in a worker process of its own, given
 * the options object itself (a chunk size the CLI has no flag for reaches the worker). A slide that fails is
 * reported with its reason and leaves nothing behind; the others finish, each exactly once; a rerun skips them.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { workerProcessArgv } from '../src/core/modules.ts';
import { type InferSummary, inferMany, inferSlide, type SlideJobOptions } from '../src/infer/index.ts';
import { openSlide } from '../src/slide/index.ts';
import { fixture } from './fixtures.ts';

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'infer-cohort-'));
  // Two small tissue crops of CMU-1 as tiled TIFFs (with their mpp), and a file that is no slide at all.
  const slide = await openSlide(fixture('slides', 'cmu-1-small-region.svs'));
  const pxPerMm = 1000 / slide.mpp!.x;
  for (const [i, name] of ['a', 'b'].entries()) {
    const r = await slide.readRegion({
      x: 600 + 400 * i,
      y: 900 + 300 * i,
      level: 0,
      width: 512,
      height: 512,
    });
    await sharp(r.data, { raw: { width: 512, height: 512, channels: 4 } })
      .removeAlpha()
      .tiff({
        tile: true,
        tileWidth: 128,
        tileHeight: 128,
        xres: pxPerMm,
        yres: pxPerMm,
        resolutionUnit: 'cm',
      })
      .toFile(join(dir, `${name}.tif`));
  }
  await slide.close();
  await writeFile(join(dir, 'broken.tif'), 'not a TIFF\n');
  await writeFile(join(dir, 'manifest.csv'), 'slide,name\na.tif,a\nbroken.tif,broken\nb.tif,b\n');
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const summaryOf = async (out: string, name: string): Promise<InferSummary> =>
  JSON.parse(await readFile(join(out, name, `${name}.summary.json`), 'utf8')) as InferSummary;

test('worker processes run inferSlide with the options object; a failing slide is reported, the rest finish once', async () => {
  const out = join(dir, 'out');
  const options: SlideJobOptions = {
    model: fixture('segformer', 'segformer-tiny'),
    mpp: 0.5,
    tile: 128,
    overlap: 32,
    batch: 2,
    tissue: 'all',
    chunkSize: 128,
    polygons: 'classes',
  };
  const lines: string[] = [];
  const r = await inferMany(join(dir, 'manifest.csv'), out, {
    options,
    workers: 2,
    log: (l) => lines.push(l),
  });
  assert.deepEqual([...r.done].sort(), ['a', 'b']);
  assert.deepEqual(r.skipped, []);
  assert.equal(r.failed.length, 1);
  assert.equal(r.failed[0]!.name, 'broken');
  assert.match(r.failed[0]!.error, /broken\.tif/, r.failed[0]!.error);
  assert.ok(
    lines.some((l) => l.includes('broken failed')),
    lines.join('\n'),
  );

  // Same result as inferSlide in this process with the same options.
  const direct = await inferSlide(join(dir, 'a.tif'), {
    ...options,
    out: join(dir, 'direct'),
    name: 'a',
    log: null,
  });
  for (const name of ['a', 'b']) {
    const s = await summaryOf(out, name);
    assert.equal(s.name, name);
    assert.equal(s.grid.chunkSize, 128, 'chunkSize (no CLI flag) reached the worker');
    assert.equal(s.polygons.mode, 'classes');
  }
  const a = await summaryOf(out, 'a');
  assert.deepEqual(a.areas, direct.areas);
  assert.deepEqual(a.tiles, direct.tiles);
  assert.equal(a.unlabelledPixels, direct.unlabelledPixels);

  const entries = await readdir(out);
  assert.deepEqual(
    entries.filter((e) => e.startsWith('.tmp-')),
    [],
    'no partial output left',
  );
  assert.ok(!entries.includes('broken'));
  assert.ok(!(await readdir(join(out, 'a'))).includes('.cache'), 'the ONNX export cache is not kept');
  const completions = (await readFile(join(out, 'completions.log'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => l.split('\t')[0]);
  assert.deepEqual([...completions].sort(), ['a', 'b']);

  // A rerun skips the finished slides and tries the failed one again.
  const again = await inferMany(join(dir, 'manifest.csv'), out, { options, workers: 2, log: () => {} });
  assert.deepEqual([...again.skipped].sort(), ['a', 'b']);
  assert.deepEqual(again.done, []);
  assert.deepEqual(
    again.failed.map((f) => f.name),
    ['broken'],
  );
});

test('worker processes keep the runtime options, not what names the program (-e code, --test, --input-type)', () => {
  const js = new URL('file:///pkg/dist/infer/cohort-worker.js');
  const ts = new URL('file:///repo/src/infer/cohort-worker.ts');
  const parent = [
    '--input-type=module',
    '-e',
    'await main()',
    '--max-old-space-size=4096',
    '--test-reporter',
    'spec',
  ];
  assert.deepEqual(workerProcessArgv(js, parent), ['--max-old-space-size=4096']);
  assert.deepEqual(workerProcessArgv(js, ['--eval=1', '--conditions', 'dev', '--test']), [
    '--conditions',
    'dev',
  ]);
  // TypeScript: tsx is added (by absolute URL) unless the parent loads it already.
  const withTsx = workerProcessArgv(ts, ['--max-old-space-size=4096']);
  assert.equal(withTsx.length, 3);
  assert.equal(withTsx[1], '--import');
  assert.match(withTsx[2]!, /^file:\/\/.*tsx/);
  assert.deepEqual(workerProcessArgv(ts, ['--import', 'tsx']), ['--import', 'tsx']);
});

test('a worker process killed mid-slide: that slide fails and leaves nothing, the next one finishes, a rerun completes it', async () => {
  const out = join(dir, 'out-killed');
  // Slide a is the whole sample (long enough to be caught mid-slide), b a small crop.
  const sample = fixture('slides', 'cmu-1-small-region.svs');
  await writeFile(join(dir, 'two.csv'), `slide,name\n${sample},a\nb.tif,b\n`);
  const options: SlideJobOptions = {
    model: fixture('segformer', 'segformer-tiny'),
    tile: 256,
    overlap: 32,
    tissue: 'all',
    polygons: 'none',
  };
  const running = inferMany(join(dir, 'two.csv'), out, { options, workers: 1, log: () => {} });
  // The worker process of slide a: this process's child running cohort-worker while a's temporary folder exists.
  let killed: number | undefined;
  for (let i = 0; i < 1200 && killed === undefined; i++) {
    const tmp = (await readdir(out).catch(() => [] as string[])).some((e) => e.startsWith('.tmp-a-'));
    const worker = tmp
      ? execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' })
          .split('\n')
          .find((l) => l.includes('cohort-worker'))
      : undefined;
    if (worker) {
      killed = Number(worker.trim().split(/\s+/)[0]);
      process.kill(killed, 'SIGKILL');
    } else await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(killed, 'the worker of slide a was found');
  const r = await running;
  assert.deepEqual(r, {
    done: ['b'],
    skipped: [],
    failed: [{ name: 'a', error: 'worker process killed by SIGKILL' }],
  });
  assert.deepEqual(
    (await readdir(out)).filter((e) => e.startsWith('.tmp-')),
    [],
    'no partial output left',
  );
  const again = await inferMany(join(dir, 'two.csv'), out, { options, workers: 1, log: () => {} });
  assert.deepEqual(again.done, ['a']);
  assert.deepEqual(again.skipped, ['b']);
  assert.equal((await summaryOf(out, 'a')).name, 'a');
});

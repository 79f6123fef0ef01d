/**
 * Cohorts on a real queue: a redis-server started here (on a free port), three small slides enqueued, two worker
 * processes, the one caught mid-slide SIGKILLed. Every slide must finish exactly once (completions.log), with its
 * summary, and no temporary folder may be left behind. Also infer-many on the same manifest skips everything.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { inferMany } from '../src/infer/index.ts';
import { openSlide } from '../src/slide/index.ts';
import { fixture, ROOT } from './fixtures.ts';

const exec = promisify(execFile);
const CLI = join(ROOT, 'bin', 'slideseg.js');
const NAMES = ['s1', 's2', 's3'];
let dir: string;
let redis: ChildProcess | undefined;
let url: string;
const workers: ChildProcess[] = [];

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
    srv.on('error', rej);
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'infer-queue-'));
  const which = spawnSync('redis-server', ['--version']);
  if (which.error) {
    throw new Error(
      'redis-server not found on PATH: install it (Debian: apt-get install redis-server) to run this test',
    );
  }
  const port = await freePort();
  redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  url = `redis://127.0.0.1:${port}/0`;
  // Small tissue crops of CMU-1 as tiled TIFFs (with their mpp), one per slide.
  const slide = await openSlide(fixture('slides', 'cmu-1-small-region.svs'));
  const pxPerMm = 1000 / slide.mpp!.x;
  const lines = ['slide,name'];
  for (const [i, name] of NAMES.entries()) {
    const r = await slide.readRegion({
      x: 500 + 300 * i,
      y: 800 + 200 * i,
      level: 0,
      width: 768,
      height: 768,
    });
    const path = join(dir, `${name}.tif`);
    await sharp(r.data, { raw: { width: 768, height: 768, channels: 4 } })
      .removeAlpha()
      .tiff({
        tile: true,
        tileWidth: 128,
        tileHeight: 128,
        xres: pxPerMm,
        yres: pxPerMm,
        resolutionUnit: 'cm',
      })
      .toFile(path);
    lines.push(`${name}.tif,${name}`);
  }
  await slide.close();
  await writeFile(join(dir, 'manifest.csv'), `${lines.join('\n')}\n`);
  for (let i = 0; i < 50; i++) {
    const ping = spawnSync('redis-cli', ['-u', url, 'ping']);
    if (ping.stdout?.toString().trim() === 'PONG') return;
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
  redis?.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

function startWorker(): ChildProcess {
  const w = spawn(
    process.execPath,
    [CLI, 'worker', '--queue', url, '--lock-ms', '2000', '--stalled-ms', '1000', '--idle-exit-ms', '4000'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  w.stderr?.on('data', () => {});
  workers.push(w);
  return w;
}

const exited = (w: ChildProcess) =>
  w.exitCode !== null || w.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((r) => w.once('exit', () => r()));

test('two workers, one killed mid-slide: every slide finished exactly once, nothing partial left', async () => {
  const out = join(dir, 'out');
  const model = fixture('segformer', 'segformer-tiny');
  await exec(process.execPath, [
    CLI,
    'enqueue',
    join(dir, 'manifest.csv'),
    '--queue',
    url,
    '--out',
    out,
    '--model',
    model,
    '--mpp',
    '0.5',
    '--tile',
    '128',
    '--overlap',
    '32',
    '--batch',
    '2',
    '--tissue',
    'all',
    '--backoff-ms',
    '500',
  ]);
  // Enqueueing again adds nothing (job id = slide name).
  const again = await exec(process.execPath, [
    CLI,
    'enqueue',
    join(dir, 'manifest.csv'),
    '--queue',
    url,
    '--out',
    out,
    '--model',
    model,
  ]);
  assert.match(again.stdout, /enqueued 0 of 3/);
  const a = startWorker();
  const b = startWorker();
  // Kill the worker whose temporary folder shows it is in the middle of a slide.
  let victim: ChildProcess | undefined;
  for (let i = 0; i < 600 && !victim; i++) {
    const tmp = (await readdir(out).catch(() => [] as string[])).find((e) => e.startsWith('.tmp-'));
    const pid = tmp ? Number(tmp.split('-')[2]) : Number.NaN;
    victim = [a, b].find((w) => w.pid === pid);
    if (!victim) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(victim, 'a worker started a slide');
  victim.kill('SIGKILL');
  const survivor = victim === a ? b : a;
  // The survivor picks the stalled job up, finishes the queue, and exits once it has been idle.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    exited(survivor),
    new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Error('survivor did not finish the queue in 70 s')), 70_000);
    }),
  ]).finally(() => clearTimeout(timer));
  const status = await exec(process.execPath, [CLI, 'queue-status', '--queue', url]);
  assert.match(status.stdout, /completed 3/);
  assert.match(status.stdout, /failed 0/);
  const completions = (await readFile(join(out, 'completions.log'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => l.split('\t')[0]);
  assert.deepEqual([...completions].sort(), NAMES, `completions: ${completions}`);
  const entries = await readdir(out);
  assert.deepEqual(
    entries.filter((e) => e.startsWith('.tmp-')),
    [],
    'no partial output left',
  );
  for (const n of NAMES) {
    const summary = JSON.parse(await readFile(join(out, n, `${n}.summary.json`), 'utf8'));
    assert.equal(summary.name, n);
    assert.ok(existsSync(join(out, n, `${n}.ome.zarr`, 'labels', 'segmentation', '.zattrs')));
  }
  // The same cohort on one machine: everything is finished already, so everything is skipped.
  const many = await inferMany(join(dir, 'manifest.csv'), out, {
    options: { model },
    workers: 2,
    log: () => {},
  });
  assert.deepEqual(many.skipped.sort(), NAMES);
  assert.equal(many.done.length, 0);
});

/**
 * `slideseg sweep`: 2 variants × 2 seeds of a tiny config write sweep.csv (4 rows whose values are the runs' own
 * validation metrics), report.md (mean ± sd) and the PNGs; a sweep killed after its first finished run and started
 * again does not redo finished runs; the same sweep runs as BullMQ jobs on a real redis-server and a worker process.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { stringify } from 'yaml';
import { ready } from '../src/engine/index.ts';
import { readSweepFile, runSweep, sweepSpecFrom } from '../src/sweep/index.ts';
import { needs, ROOT } from './fixtures.ts';
import { MONUSEG_NAMES, tinyConfig, tinyDataset } from './train-helpers.ts';

const CLI = join(ROOT, 'bin', 'slideseg.js');
const skip = needs(['monuseg']);
let data: string;
let work: string;
let sweepFile: string;
const children: ChildProcess[] = [];

before(async () => {
  if (skip) return;
  await ready('cpu');
  data = await tinyDataset(64);
  work = await mkdtemp(join(tmpdir(), 'slideseg-sweep-'));
  const base = tinyConfig(data, 'unused', { steps: 2, valEvery: 1, saveEvery: 1, workers: 1 });
  base.data = { ...base.data, val: [MONUSEG_NAMES[0]!] };
  base.val = { ...base.val, overlays: 0 };
  await writeFile(join(work, 'train.yaml'), stringify(base));
  sweepFile = join(work, 'sweep.yaml');
  await writeFile(
    sweepFile,
    [
      'base: train.yaml',
      `data: ${JSON.stringify(data)}`,
      'seeds: [0, 1]',
      'variants:',
      '  dice-ce: {}',
      '  mcc: { model.numLabels: 1, loss: [ { name: mcc } ] }',
      '',
    ].join('\n'),
  );
});
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (work) await rm(work, { recursive: true, force: true });
  if (data) await rm(data, { recursive: true, force: true });
});

function parseCsv(text: string): Record<string, string>[] {
  const [head, ...rows] = text.trim().split('\n');
  const cols = head!.split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [cols[i]!, v])));
}

test('a killed sweep restarts without redoing finished runs; CSV, report and pictures', {
  skip,
}, async () => {
  const out = join(work, 'out');
  const child = spawn(
    process.execPath,
    [CLI, 'sweep', sweepFile, '--out', out, '--backend', 'cpu', '--quiet'],
    {
      stdio: 'ignore',
    },
  );
  children.push(child);
  const first = join(out, 'runs', 'dice-ce', 'seed-0', 'model.json');
  const deadline = Date.now() + 240_000;
  while (!existsSync(first)) {
    assert.ok(Date.now() < deadline, 'the first run did not finish within 240 s');
    assert.equal(child.exitCode, null, 'the sweep exited early');
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const finished = ['dice-ce/seed-0', 'dice-ce/seed-1', 'mcc/seed-0', 'mcc/seed-1'].filter((r) =>
    existsSync(join(out, 'runs', r, 'model.json')),
  );
  assert.ok(finished.length >= 1 && finished.length < 4, `finished before the kill: ${finished}`);
  const before = await Promise.all(
    finished.map(async (r) => (await stat(join(out, 'runs', r, 'model', 'model.safetensors'))).mtimeMs),
  );

  const logs: string[] = [];
  const r = await runSweep(await readSweepFile(sweepFile), { out, quiet: true, log: (l) => logs.push(l) });
  assert.equal(r.runs, 4);
  assert.equal(r.skipped, finished.length);
  assert.equal(r.trained, 4 - finished.length);
  const after = await Promise.all(
    finished.map(async (f) => (await stat(join(out, 'runs', f, 'model', 'model.safetensors'))).mtimeMs),
  );
  assert.deepEqual(after, before, 'a finished run was trained again');

  const rows = parseCsv(await readFile(join(out, 'sweep.csv'), 'utf8'));
  assert.equal(rows.length, 4);
  assert.deepEqual(
    rows.map((x) => `${x.variant}/${x.seed}`),
    ['dice-ce/0', 'dice-ce/1', 'mcc/0', 'mcc/1'],
  );
  for (const row of rows) {
    const val = (await readFile(join(out, 'runs', row.variant!, `seed-${row.seed}`, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((x) => x.type === 'val');
    assert.equal(val.length, 2);
    assert.equal(Number(row.best_mDice), Math.max(...val.map((v) => v.mDice)));
    assert.equal(Number(row.final_mDice), val.at(-1).mDice);
    assert.equal(Number(row.steps), 2);
  }
  // The binary variant reports foreground Dice (its model has one logit).
  assert.ok(rows.filter((x) => x.variant === 'mcc').every((x) => x.best_fgDice !== ''));

  const report = await readFile(join(out, 'report.md'), 'utf8');
  const dice = rows.filter((x) => x.variant === 'dice-ce').map((x) => Number(x.best_mDice));
  const mean = (dice[0]! + dice[1]!) / 2;
  const sd = Math.abs(dice[0]! - dice[1]!) / Math.SQRT2;
  const table = report.split('\n').filter((l) => l.startsWith('| '));
  const header = table[0]!.split(' | ');
  const diceRow = table.find((l) => l.startsWith('| dice-ce |'))!.split(' | ');
  assert.equal(diceRow[header.indexOf('best_mDice')], `${mean.toFixed(4)} ± ${sd.toFixed(4)}`);
  assert.match(report, /\| mcc \| 2 \|/);
  for (const png of ['best_mDice.png', 'best_mIoU.png', 'val-curves-mDice.png']) {
    const file = join(out, 'pictures', png);
    assert.ok(report.includes(`pictures/${png}`), `report links ${png}`);
    const meta = await sharp(file).metadata();
    assert.equal(meta.format, 'png');
    assert.ok((meta.width ?? 0) > 300);
  }
});

test('sweep files with mistakes get a one-line error naming the file', () => {
  const bad = (raw: unknown) => () => sweepSpecFrom(raw, 'sweep.yaml', '/tmp');
  assert.throws(
    bad({ base: 'a.yaml', variants: { x: {} }, sedes: [1] }),
    /^Error: sweep.yaml: unknown key 'sedes'/,
  );
  assert.throws(bad({ base: 'a.yaml', variants: {} }), /sweep.yaml: `variants` must map/);
  assert.throws(bad({ base: 'a.yaml', variants: { 'a/b': {} } }), /variant name 'a\/b'/);
  assert.throws(bad({ base: 'a.yaml', seeds: [1, 1], variants: { a: {} } }), /seeds lists a seed twice/);
  assert.throws(bad({ base: 'a.yaml', variants: { a: { seed: 3 } } }), /'seed' is set by the sweep/);
  const usage = spawnSync(process.execPath, [CLI, 'sweep', 'x.yaml'], { encoding: 'utf8' });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--out DIR is required/);
});

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

test('a sweep on a BullMQ queue is trained by a worker process', { skip }, async () => {
  assert.ok(
    !spawnSync('redis-server', ['--version']).error,
    'redis-server not on PATH (apt-get install redis-server)',
  );
  const port = await freePort();
  const redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  children.push(redis);
  const url = `redis://127.0.0.1:${port}/0`;
  for (let i = 0; i < 50; i++) {
    if (spawnSync('redis-cli', ['-u', url, 'ping']).stdout?.toString().trim() === 'PONG') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const file = join(work, 'queued.yaml');
  await writeFile(
    file,
    `base: train.yaml\ndata: ${JSON.stringify(data)}\nseeds: [5]\nvariants:\n  dice-ce: {}\n`,
  );
  const worker = spawn(
    process.execPath,
    [CLI, 'sweep', '--worker', '--queue', url, '--idle-exit', '3', '--backend', 'cpu'],
    { stdio: 'ignore' },
  );
  children.push(worker);
  const out = join(work, 'queued');
  const r = await runSweep(await readSweepFile(file), { out, queue: url, log: () => {} });
  assert.equal(r.trained, 1);
  const rows = parseCsv(await readFile(join(out, 'sweep.csv'), 'utf8'));
  assert.deepEqual(
    rows.map((x) => [x.variant, x.seed, x.steps]),
    [['dice-ce', '5', '2']],
  );
  assert.ok(existsSync(join(out, 'runs', 'dice-ce', 'seed-5', 'model.json')));
  await new Promise((res) => worker.once('exit', res));
  assert.equal(worker.exitCode, 0, 'the idle worker exits cleanly');
  redis.kill('SIGTERM');
});

test("variants' path keys are relative to the sweep file, other values are kept as given", () => {
  const spec = sweepSpecFrom(
    {
      base: 'train.yaml',
      data: '../data',
      variants: {
        a: {
          'data.slides': 'slides.yaml',
          'model.encoder': '/abs/enc',
          'optim.lr': 0.1,
          loss: [{ name: 'mcc' }],
        },
      },
    },
    'sweep.yaml',
    '/x/exp',
  );
  assert.equal(spec.base, '/x/exp/train.yaml');
  assert.equal(spec.data, '/x/data');
  assert.deepEqual(spec.variants[0]!.overrides, [
    ['data.slides', '/x/exp/slides.yaml'],
    ['model.encoder', '/abs/enc'],
    ['optim.lr', 0.1],
    ['loss', [{ name: 'mcc' }]],
  ]);
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { ready } from '../src/engine/index.ts';
import { loadSegformer } from '../src/models/segformer/index.ts';
import { train } from '../src/train/trainer.ts';
import { ROOT } from './fixtures.ts';
import { tinyConfig, tinyDataset } from './train-helpers.ts';

let data: string;
let work: string;
before(async () => {
  await ready('cpu');
  data = await tinyDataset();
  work = await mkdtemp(join(tmpdir(), 'slideseg-resume-'));
});
after(async () => {
  await rm(data, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

test('4 steps straight equal 2 steps, stop, resume, 2 steps (cpu backend, bit for bit)', async () => {
  const straight = join(work, 'straight');
  const split = join(work, 'split');
  await train(tinyConfig(data, straight), { quiet: true });
  const first = await train(tinyConfig(data, split), { quiet: true, stopAtStep: 2 });
  assert.equal(first.step, 2);
  assert.equal(existsSync(join(split, 'model')), false, 'an interrupted run has no final model yet');
  await train(tinyConfig(data, split), { quiet: true, resume: true });
  const a = await readFile(join(straight, 'model', 'model.safetensors'));
  const b = await readFile(join(split, 'model', 'model.safetensors'));
  assert.ok(a.equals(b), 'resumed weights differ from the uninterrupted run');
  // The optimiser state matters too: a run resumed without it would diverge. Check it moved at all.
  const logA = (await readFile(join(straight, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const logB = (await readFile(join(split, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    logB.map((r) => [r.step, r.loss]),
    logA.map((r) => [r.step, r.loss]),
  );
  // Training did change the weights: the final model differs from the step-3 checkpoint (2 are kept).
  const mid = await readFile(join(split, 'checkpoints', 'step-0000003', 'model.safetensors'));
  assert.ok(!mid.equals(a), 'weights did not change between step 3 and step 4');
  assert.equal(existsSync(join(split, 'checkpoints', 'step-0000002')), false, 'old checkpoints are pruned');
  assert.notEqual(logA[0].loss, logA[3].loss);
});

test('a run SIGKILLed at any moment leaves a complete, resumable checkpoint', async () => {
  const out = join(work, 'killed');
  const cfgPath = join(work, 'killed.yaml');
  await writeFile(cfgPath, stringify(tinyConfig(data, out, { steps: 200 })));
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin/slideseg.js'), 'train', '--config', cfgPath, '--backend', 'cpu', '--quiet'],
    {
      stdio: 'ignore',
    },
  );
  // Wait for the first checkpoints, then kill in the middle of the run without warning.
  const deadline = Date.now() + 60_000;
  while (!existsSync(join(out, 'checkpoints', 'latest.json'))) {
    assert.ok(Date.now() < deadline, 'no checkpoint within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 1500 + Math.random() * 1000));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const latest = JSON.parse(await readFile(join(out, 'checkpoints', 'latest.json'), 'utf8'));
  const dir = join(out, 'checkpoints', latest.dir);
  const { model } = await loadSegformer(dir);
  model.dispose();
  const state = JSON.parse(await readFile(join(dir, 'trainer_state.json'), 'utf8'));
  assert.equal(state.step, latest.step);
  const resumed = await train(tinyConfig(data, out, { steps: latest.step + 1 }), {
    quiet: true,
    resume: true,
  });
  assert.equal(resumed.step, latest.step + 1);
  assert.ok(existsSync(join(out, 'model', 'model.safetensors')));
});

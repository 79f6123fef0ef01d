/**
 * The shared training loop on its own, with a least-squares model small enough to run many times: interrupted and
 * resumed runs equal uninterrupted ones bit for bit (for any stop step, with gradient accumulation), early stopping
 * ends the run where the hook says and leaves a checkpoint there, and a run without a folder writes nothing.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ready, tf } from '../src/engine/index.ts';
import { fromFloat32, toFloat32 } from '../src/io/safetensors.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors-file.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { runTrainingLoop, type TrainingLoopSpec } from '../src/optim/loop.ts';
import { createRng, mixSeed } from '../src/patching/random.ts';

let work: string;
before(async () => {
  await ready('cpu');
  work = await mkdtemp(join(tmpdir(), 'slideseg-loop-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

const DIM = 5;
const TRUE_W = [0.5, -1, 2, 0.25, -0.75];

/** A run fitting y = x·w on batches drawn from (seed, step, k); returns the learnt weights and the loop's result. */
async function fit(
  out: string | undefined,
  extra: Partial<TrainingLoopSpec> = {},
): Promise<{ w: Float32Array; result: Awaited<ReturnType<typeof runTrainingLoop>> }> {
  const w = tf.variable(tf.zeros([DIM, 1]), true, `w-${Math.random()}`);
  const opt = new AdamW([{ params: new Map([['w', w]]) }], { lr: 0.05, weightDecay: 0.01 });
  try {
    const result = await runTrainingLoop({
      label: 'fit',
      out,
      opt,
      schedule: { kind: 'poly', baseLr: 0.05, totalSteps: 12, warmupSteps: 3 },
      steps: 12,
      accumulate: 2,
      clipGradNorm: 1,
      logEvery: 2,
      saveEvery: 3,
      keepCheckpoints: 2,
      quiet: true,
      log: () => {},
      restoreWeights: async (dir) => {
        const t = (await readSafetensors(join(dir, 'w.safetensors'))).tensors.get('w')!;
        w.assign(tf.tensor2d(toFloat32(t, 'w'), [DIM, 1]));
      },
      saveWeights: (dir) =>
        writeSafetensors(join(dir, 'w.safetensors'), [
          ['w', fromFloat32(Float32Array.from(w.dataSync() as Float32Array), w.shape)],
        ]),
      state: () => ({ seed: 3 }),
      microBatch: async (step, k, acc) => {
        const rng = createRng(mixSeed(3, step * 2 + k));
        const xs = Float32Array.from({ length: 8 * DIM }, () => rng.uniform(-1, 1));
        const ys = Float32Array.from({ length: 8 }, (_, i) =>
          TRUE_W.reduce((s, wj, j) => s + wj * xs[i * DIM + j]!, 0),
        );
        const x = tf.tensor2d(xs, [8, DIM]);
        const y = tf.tensor2d(ys, [8, 1]);
        const { value, grads } = tf.variableGrads(() => tf.losses.meanSquaredError(y, x.matMul(w)), [w]);
        acc.addLoss(value.dataSync()[0]!);
        acc.addGradients([['w', grads[w.name]!]]);
        tf.dispose([x, y, value]);
      },
      ...extra,
    });
    return { w: Float32Array.from(w.dataSync() as Float32Array), result };
  } finally {
    opt.dispose();
    w.dispose();
  }
}

/** The metrics log without its timing field (the only thing a resumed run may change). */
async function metricsOf(dir: string): Promise<unknown[]> {
  const text = await readFile(join(dir, 'metrics.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((l) => {
      const { stepsPerSec: _, ...rest } = JSON.parse(l);
      return rest;
    });
}

test('a run stopped at any step and resumed equals the uninterrupted run, bit for bit', async () => {
  const straight = join(work, 'straight');
  const whole = await fit(straight);
  assert.equal(whole.result.stopAt, 12);
  assert.ok(
    whole.w.some((v) => v !== 0),
    'the weights moved',
  );
  for (const stop of [1, 3, 4, 11]) {
    const dir = join(work, `split-${stop}`);
    const first = await fit(dir, { stopAtStep: stop });
    assert.equal(first.result.stopAt, stop);
    const resumed = await fit(dir, { resume: true });
    assert.equal(resumed.result.start, stop, `resumed from the checkpoint at ${stop}`);
    assert.deepEqual(resumed.w, whole.w, `stopped at ${stop}: resumed weights differ`);
    // A stop logs the interval it cuts short, and the resumed run's first interval starts at the stop; every
    // other record (logEvery 2) is the same as in the uninterrupted run.
    const comparable = (r: { step: number }) => r.step % 2 === 0 && (r.step <= stop || r.step - 2 >= stop);
    const logged = (await metricsOf(dir)) as { step: number }[];
    assert.deepEqual(
      logged.filter(comparable),
      ((await metricsOf(straight)) as { step: number }[]).filter(comparable),
      `stopped at ${stop}: metrics differ`,
    );
    assert.equal(logged.at(-1)?.step, 12);
  }
  // keepCheckpoints: 2 of the saves at 3, 6, 9, 12 remain.
  const kept = (await readdir(join(straight, 'checkpoints'))).filter((e) => e.startsWith('step-')).sort();
  assert.deepEqual(kept, ['step-0000009', 'step-0000012']);
  const state = JSON.parse(
    await readFile(join(straight, 'checkpoints', 'step-0000012', 'trainer_state.json'), 'utf8'),
  );
  assert.equal(state.step, 12);
  assert.equal(state.optimizerStep, 12);
  assert.equal(state.seed, 3);
});

test("'stop' from the step hook ends the run there, with a checkpoint at that step", async () => {
  const dir = join(work, 'early');
  const seen: number[] = [];
  const { result } = await fit(dir, {
    afterStep: async (done) => {
      seen.push(done);
      return done === 5 ? 'stop' : undefined;
    },
  });
  assert.equal(result.stopAt, 5);
  assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  const latest = JSON.parse(await readFile(join(dir, 'checkpoints', 'latest.json'), 'utf8'));
  assert.equal(latest.step, 5);
});

test('a run without a folder writes nothing and keeps its metrics in memory', async () => {
  const before = await readdir(work);
  const { result, w } = await fit(undefined);
  assert.deepEqual(await readdir(work), before);
  assert.equal(result.stopAt, 12);
  assert.deepEqual(
    result.history.map((r) => r.step),
    [2, 4, 6, 8, 10, 12],
  );
  const withFolder = await fit(join(work, 'compare'));
  assert.deepEqual(w, withFolder.w, 'checkpointing does not change the run');
  assert.equal(existsSync(join(work, 'compare', 'metrics.jsonl')), true);
});

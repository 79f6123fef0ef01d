/**
 * Whole-slide inference speed: slideseg's `inferSlide` (ONNX Runtime, the default backend) against
 *  - the raw ONNX Runtime rate: the same .onnx file, batch, tile size and intra-op threads, the session alone on
 *    pre-made input tensors (no reading, no pre- or post-processing), measured just before and just after each
 *    slideseg round so a shared machine's load hits both alike; whole-slide tiles/s is reported as a fraction of it
 *    (the mean of the two raw measurements around the round). Each raw measurement takes the faster of ORT's
 *    default session (idle intra-op threads spin) and the pipeline's (they sleep), run batch by batch in turns;
 *  - a PyTorch + OpenSlide reference pipeline (bench/infer_reference.py, Debian's python3-torch and
 *    python3-openslide; skipped with --no-torch) on exactly the same tissue tiles: slideseg's run reports every tile
 *    it computed and the reference reads those level-0 regions.
 * Rounds are interleaved (raw ORT, slideseg, raw ORT, reference, ...).
 *
 * Model: SegFormer-B0, random init (seed 0), 2 labels, saved to a temp folder and exported to ONNX once the way
 * `slideseg infer` does it (decoder folded; --no-fold exports the faithful graph); 512-px tiles, overlap 64,
 * 0.5 µm/px.
 * Timed window on every side: after two batches (warm-up: ONNX/Torch first-run costs; ONNX Runtime's second run
 * still allocates its memory-pattern buffers, ~360 MB here, and a process's first touch of fresh memory costs
 * ~4 ms/MiB on the VMs measured) to the last batch. Raw ORT likewise runs two batches before its clock starts.
 * slideseg's loop includes reading, decoding, resizing, normalising, the model, upsampling + softmax, blending,
 * argmax and writing label (and image) chunks; the reference stops at the logits.
 * CPU: the process's own CPU seconds per wall second (all threads: decode workers, ORT / Torch threads) and the
 * busy fraction of each core from /proc/stat over the same window (this includes anything else running).
 *
 * Per-stage table (slideseg, timed window, ms per tile; src/infer/stage-clock.ts): `main` is main-thread time
 * (normalise, upsample+softmax, blend, argmax, queuing writes), `latency` the summed issue-to-completion time of
 * work done elsewhere (reads and decodes in the slide's worker pool, the model on ORT's threads, chunk writes),
 * `wait` how long the tile loop stood waiting on that stage. The slide's own resampling (readRegionAtMpp, when the
 * slide states its mpp) counts as read/decode.
 *
 * usage: node --import tsx bench/infer-slide.ts [--slides a.svs,b.tif] [--max-tiles 16] [--batch 4] [--rounds 2]
 *            [--threads N] [--slide-mpp 0.25] [--ort-batches 8] [--json] [--no-torch]
 *            [--no-fold]
 * --max-tiles caps the tiles per slide (the TCGA slide has ~hundreds of tissue tiles at 0.5 µm/px).
 * --slide-mpp is used for slides that do not state their resolution (the TCGA fixture does not).
 *
 * The 16k×16k pyramidal JPEG TIFF (0.25 µm/px, level 1 read directly at 0.5 µm/px):
 *   node --import tsx bench/make-large-slide.ts --size 16000 --out out/bench/large-16k.tif
 *   node --import tsx bench/infer-slide.ts --no-torch --rounds 4 --max-tiles 64 --slides out/bench/large-16k.tif
 * and the whole slide (308 tissue tiles): --rounds 2 --max-tiles 400. The machine's speed drifts by ±10 % within
 * minutes on shared VMs: take the median of several rounds.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { tuneMalloc } from '../src/core/malloc-tuning.ts';
import { ready } from '../src/engine/index.ts';
import { InferAbortedError, inferSlide } from '../src/infer/slide-infer.ts';
import { STAGES, type Stage, StageClock, type StageTimes } from '../src/infer/stage-clock.ts';
import { loadTileRunner } from '../src/infer/tile-runner.ts';
import { Segformer, saveSegformer, segformerPreset } from '../src/models/segformer/index.ts';
import { OnnxSegmenter } from '../src/onnx/index.ts';
import { openSlide } from '../src/slide/index.ts';

// As the CLI does (core/malloc-tuning.ts); SLIDESEG_MALLOC_TUNING=0 measures glibc's defaults.
process.stderr.write(`glibc malloc tuning (as the CLI): ${tuneMalloc() ? 'on' : 'off'}\n`);

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = resolve(root, '../shared/fixtures/slides');
const { values } = parseArgs({
  options: {
    slides: {
      type: 'string',
      default: [join(fixtures, 'cmu-1-small-region.svs'), join(fixtures, 'tcga-cr-7395-01a-01-ts1.svs')].join(
        ',',
      ),
    },
    'max-tiles': { type: 'string', default: '16' },
    batch: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '2' },
    threads: { type: 'string', default: String(availableParallelism()) },
    'slide-mpp': { type: 'string', default: '0.25' },
    'ort-batches': { type: 'string', default: '8' },
    json: { type: 'boolean', default: false },
    'no-torch': { type: 'boolean', default: false },
    'no-fold': { type: 'boolean', default: false },
  },
});
const maxTiles = Number(values['max-tiles']);
const batch = Number(values.batch);
const rounds = Number(values.rounds);
const threads = Number(values.threads);
const ortBatches = Number(values['ort-batches']);
const TILE = 512;
const OVERLAP = 64;
const MPP = 0.5;
// Batches run before the clock starts, on every side (see the module comment).
const WARMUP_BATCHES = 2;
const log = (s: string) => process.stderr.write(`${s}\n`);

/** Per-core [busy, total] jiffies. */
function procStat(): [number, number][] {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => /^cpu\d/.test(l))
    .map((l) => {
      const v = l.trim().split(/\s+/).slice(1).map(Number);
      const total = v.reduce((a, b) => a + b, 0);
      return [total - v[3]! - v[4]!, total];
    });
}
const coreUse = (a: [number, number][], b: [number, number][]) =>
  a.map(([b0, t0], i) => (b[i]![0] - b0) / Math.max(1, b[i]![1] - t0));

interface SideResult {
  tiles: number;
  timedTiles: number;
  seconds: number;
  tilesPerSecond: number;
  coresBusy: number;
  systemCoreBusy: number[];
}

interface SlidesegResult extends SideResult {
  /** Raw ORT tiles/s just before and just after this round (the faster session setting of each). */
  rawBefore: number;
  rawAfter: number;
  /** The raw measurements in full: tiles/s with spinning and with sleeping intra-op threads, CPU ms per tile. */
  raw: { spinning: number; sleeping: number; sleepingCpuMs: number }[];
  /** tilesPerSecond / mean(rawBefore, rawAfter). */
  fractionOfRaw: number;
  /** Per-stage ms per timed tile. */
  stages: StageTimes;
  /** Main thread (event loop) active ms per timed tile: the timed stages and everything else it ran. */
  mainActiveMs: number;
}

interface TileRegion {
  level0X: number;
  level0Y: number;
}

/**
 * The ORT session alone: `ortBatches` batches of pre-made NCHW inputs (two alternating buffers of pixel-like
 * values, normalised as the pipeline does) after WARMUP_BATCHES warm-up runs, on this thread. Two sessions take turns batch by
 * batch so that both see the same machine: ONNX Runtime's defaults (idle threads spin) and the pipeline's own
 * settings (idle threads sleep). The faster of the two is the raw rate.
 */
async function rawOrt(
  onnx: string,
): Promise<{ tilesPerSecond: number; spinning: number; sleeping: number; sleepingCpuMs: number }> {
  const sessions = [
    await OnnxSegmenter.load(onnx, { intraOpThreads: threads }),
    await OnnxSegmenter.load(onnx, { intraOpThreads: threads, spinning: false }),
  ];
  try {
    const dims = [batch, 3, TILE, TILE];
    const inputs = [0, 1].map((k) => {
      const a = new Float32Array(batch * 3 * TILE * TILE);
      let seed = 12345 + k;
      for (let i = 0; i < a.length; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        a[i] = ((seed >>> 16) % 256) / 255 / 0.225 - 2;
      }
      return a;
    });
    for (const s of sessions) for (let i = 0; i < WARMUP_BATCHES; i++) await s.run(inputs[i & 1]!, dims);
    const ms = [0, 0];
    let sleepingCpu = 0;
    for (let i = 0; i < ortBatches; i++) {
      for (const [k, s] of sessions.entries()) {
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        await s.run(inputs[i & 1]!, dims);
        ms[k]! += performance.now() - t0;
        // CPU of the session whose threads sleep when idle (a spinning one's threads keep burning after a run).
        const c = process.cpuUsage(c0);
        if (k === 1) sleepingCpu += (c.user + c.system) / 1000;
      }
    }
    const [spinning, sleeping] = ms.map((m) => (ortBatches * batch * 1000) / m) as [number, number];
    return {
      tilesPerSecond: Math.max(spinning, sleeping),
      spinning,
      sleeping,
      sleepingCpuMs: sleepingCpu / (ortBatches * batch),
    };
  } finally {
    for (const s of sessions) await s.release();
  }
}

function stageDelta(a: StageTimes, b: StageTimes, tiles: number): StageTimes {
  const per = (x: Record<Stage, number>, y: Record<Stage, number>) =>
    Object.fromEntries(STAGES.map((s) => [s, (y[s] - x[s]) / tiles])) as Record<Stage, number>;
  return { ms: per(a.ms, b.ms), latencyMs: per(a.latencyMs, b.latencyMs), waitMs: per(a.waitMs, b.waitMs) };
}

async function runSlideseg(
  slide: string,
  model: string,
  out: string,
  slideMpp: number | undefined,
): Promise<{
  result: Omit<SlidesegResult, 'rawBefore' | 'rawAfter' | 'raw' | 'fractionOfRaw'>;
  tiles: TileRegion[];
  downsample: number;
}> {
  const tiles: TileRegion[] = [];
  let downsample = 1;
  const abort = new AbortController();
  const clock = new StageClock();
  type Sample = {
    t: number;
    cpu: NodeJS.CpuUsage;
    stat: [number, number][];
    tiles: number;
    stages: StageTimes;
    elu: EventLoopUtilization;
  };
  let start: Sample | undefined;
  let end: Sample | undefined;
  let progressCalls = 0;
  try {
    await inferSlide(slide, {
      model,
      out,
      mpp: MPP,
      tile: TILE,
      overlap: OVERLAP,
      batch,
      threads,
      slideMpp,
      signal: abort.signal,
      log: null,
      clock,
      onTile: (t) => {
        tiles.push({ level0X: t.level0X, level0Y: t.level0Y });
        downsample = t.level0Size / TILE;
      },
      onProgress: () => {
        const now = {
          t: performance.now(),
          cpu: process.cpuUsage(),
          stat: procStat(),
          tiles: tiles.length,
          stages: clock.snapshot(),
          elu: performance.eventLoopUtilization(),
        };
        // Progress comes once per batch: the clock starts after the second (see the warm-up above).
        progressCalls++;
        if (progressCalls === WARMUP_BATCHES) start = now;
        else if (progressCalls > WARMUP_BATCHES) end = now;
        if (tiles.length >= maxTiles) abort.abort();
      },
    });
  } catch (e) {
    if (!(e instanceof InferAbortedError)) throw e;
  }
  if (!start || !end)
    throw new Error(`${slide}: fewer than three batches of tissue tiles (two warm up); nothing to time`);
  const seconds = (end.t - start.t) / 1000;
  // From the samples, not cpuUsage() now: one more batch is still running in ORT when the abort lands.
  const endCpu = (end.cpu.user + end.cpu.system - start.cpu.user - start.cpu.system) / 1e6;
  const timedTiles = end.tiles - start.tiles;
  return {
    result: {
      tiles: tiles.length,
      timedTiles,
      seconds,
      tilesPerSecond: timedTiles / seconds,
      coresBusy: endCpu / seconds,
      systemCoreBusy: coreUse(start.stat, end.stat),
      stages: stageDelta(start.stages, end.stages, timedTiles),
      mainActiveMs: performance.eventLoopUtilization(end.elu, start.elu).active / timedTiles,
    },
    tiles,
    downsample,
  };
}

function runReference(model: string, tilesJson: string): SideResult {
  const r = spawnSync(
    '/usr/bin/python3',
    [join(root, 'bench/infer_reference.py'), model, tilesJson, '--threads', String(threads)],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  if (r.status !== 0) throw new Error(`bench/infer_reference.py failed: ${r.stderr || r.error}`);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return {
    tiles: j.tiles,
    timedTiles: j.timed_tiles,
    seconds: j.seconds,
    tilesPerSecond: j.tiles_per_s,
    coresBusy: j.cores_busy,
    systemCoreBusy: j.system_core_busy,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'bench-infer-slide-'));
  try {
    await ready();
    const model = join(tmp, 'segformer-b0');
    const net = new Segformer(segformerPreset('b0', { numLabels: 2 }), { seed: 0 });
    await saveSegformer(net, model);
    net.dispose();
    // Export to ONNX once, outside the timed runs, as `slideseg infer` does (cached under <out>/.cache there).
    const cacheDir = join(tmp, 'onnx-cache');
    await (await loadTileRunner(model, { cacheDir, threads, foldDecoder: !values['no-fold'] })).release();
    const onnx = readdirOnnx(cacheDir);

    const rows: Record<string, unknown>[] = [];
    for (const slide of values.slides!.split(',')) {
      const s = await openSlide(slide);
      const slideMpp = s.mpp?.x ? undefined : Number(values['slide-mpp']);
      await s.close();
      const ours: SlidesegResult[] = [];
      const ref: SideResult[] = [];
      let tilesJson = '';
      let rawAfterPrevious: Awaited<ReturnType<typeof rawOrt>> | undefined;
      for (let r = 0; r < rounds; r++) {
        const out = join(tmp, `out-${basename(slide)}-${r}`);
        log(`${basename(slide)} round ${r + 1}/${rounds}: raw ONNX Runtime…`);
        const rawBefore = rawAfterPrevious ?? (await rawOrt(onnx));
        log(`${basename(slide)} round ${r + 1}/${rounds}: slideseg…`);
        const o = await runSlideseg(slide, onnx, out, slideMpp);
        rmSync(out, { recursive: true, force: true });
        log(`${basename(slide)} round ${r + 1}/${rounds}: raw ONNX Runtime…`);
        const rawAfter = await rawOrt(onnx);
        rawAfterPrevious = values['no-torch'] ? rawAfter : undefined;
        ours.push({
          ...o.result,
          rawBefore: rawBefore.tilesPerSecond,
          rawAfter: rawAfter.tilesPerSecond,
          raw: [rawBefore, rawAfter].map(({ spinning, sleeping, sleepingCpuMs }) => ({
            spinning,
            sleeping,
            sleepingCpuMs,
          })),
          fractionOfRaw: o.result.tilesPerSecond / ((rawBefore.tilesPerSecond + rawAfter.tilesPerSecond) / 2),
        });
        if (!tilesJson) {
          tilesJson = join(tmp, `tiles-${basename(slide)}.json`);
          writeFileSync(
            tilesJson,
            JSON.stringify({
              slide,
              tile: TILE,
              batch,
              warmupBatches: WARMUP_BATCHES,
              downsample: o.downsample,
              // readRegionAtMpp averages (area) when the slide states its mpp; otherwise libvips linear.
              resize: slideMpp === undefined ? 'box' : 'bilinear',
              tiles: o.tiles.map((t) => [t.level0X, t.level0Y]),
            }),
          );
        }
        if (values['no-torch']) continue;
        log(`${basename(slide)} round ${r + 1}/${rounds}: PyTorch + OpenSlide…`);
        ref.push(runReference(model, tilesJson));
      }
      const ourRate = median(ours.map((x) => x.tilesPerSecond));
      const refRate = ref.length ? median(ref.map((x) => x.tilesPerSecond)) : Number.NaN;
      rows.push({
        slide: basename(slide),
        tiles: ours[0]!.tiles,
        slideseg: ours,
        reference: ref,
        slidesegTilesPerSecond: ourRate,
        referenceTilesPerSecond: refRate,
        fractionOfRaw: median(ours.map((x) => x.fractionOfRaw)),
        ratio: ourRate / refRate,
        ratiosPerRound: ref.map((x, i) => ours[i]!.tilesPerSecond / x.tilesPerSecond),
      });
    }
    const result = {
      model: `SegFormer-B0 (random init, 2 labels, ${values['no-fold'] ? 'faithful' : 'folded'} decoder)`,
      tile: TILE,
      overlap: OVERLAP,
      mpp: MPP,
      batch,
      threads,
      cores: availableParallelism(),
      rounds,
      maxTiles,
      slides: rows,
    };
    // The tables go to stdout, or to stderr when stdout carries the JSON.
    const print = (line: string) => (values.json ? log(line) : console.log(line));
    const f = (x: number, d = 2) => x.toFixed(d);
    const cores = (x: SideResult) => x.systemCoreBusy.map((c) => `${(100 * c).toFixed(0)}%`).join('/');
    print(
      'slide                          round  tiles  slideseg t/s  raw ORT t/s (before/after)  of raw  reference t/s  ratio  proc cores (ours/ref)  per-core busy (ours | ref)',
    );
    for (const row of rows) {
      const ours = row.slideseg as SlidesegResult[];
      const ref = row.reference as SideResult[];
      ours.forEach((o, i) => {
        const r = ref[i];
        print(
          `${String(row.slide).padEnd(30)} ${String(i + 1).padStart(5)}  ${String(o.timedTiles).padStart(5)}  ${f(o.tilesPerSecond).padStart(12)}  ${`${f(o.rawBefore)}/${f(o.rawAfter)}`.padStart(26)}  ${`${(100 * o.fractionOfRaw).toFixed(0)}%`.padStart(6)}  ${(r ? f(r.tilesPerSecond) : '-').padStart(13)}  ${(r ? f(o.tilesPerSecond / r.tilesPerSecond) : '-').padStart(5)}  ${`${f(o.coresBusy)}/${r ? f(r.coresBusy) : '-'}`.padStart(21)}  ${cores(o)} | ${r ? cores(r) : '-'}`,
        );
      });
      print(
        `${String(row.slide).padEnd(30)} median         ${f(row.slidesegTilesPerSecond as number).padStart(12)}  ${''.padStart(26)}  ${`${(100 * (row.fractionOfRaw as number)).toFixed(0)}%`.padStart(6)}  ${f(row.referenceTilesPerSecond as number).padStart(13)}  ${f(row.ratio as number).padStart(5)}`,
      );
    }
    print('');
    print(
      'slideseg per stage, ms per tile in the timed window (main thread | latency elsewhere | loop waiting):',
    );
    for (const row of rows) {
      const ours = row.slideseg as SlidesegResult[];
      print(`${row.slide}`);
      ours.forEach((o, i) => {
        print(
          `  round ${i + 1}: ${f(1000 / o.tilesPerSecond, 1)} ms/tile (process CPU ${f((1000 * o.coresBusy) / o.tilesPerSecond, 0)} ms/tile, main thread active ${f(o.mainActiveMs, 1)} ms/tile); raw ORT ${f(2000 / (o.rawBefore + o.rawAfter), 1)} ms/tile (t/s spinning/sleeping: ${o.raw.map((r) => `${f(r.spinning)}/${f(r.sleeping)}`).join(', ')}; CPU ${o.raw.map((r) => f(r.sleepingCpuMs, 0)).join('/')} ms/tile)`,
        );
      });
      print(
        `  ${'stage'.padEnd(18)}${ours.map((_, i) => `${`round ${i + 1}: main`.padStart(16)}${'latency'.padStart(9)}${'wait'.padStart(8)}`).join('')}`,
      );
      for (const st of STAGES) {
        print(
          `  ${st.padEnd(18)}${ours.map((o) => `${f(o.stages.ms[st], 1).padStart(16)}${f(o.stages.latencyMs[st], 1).padStart(9)}${f(o.stages.waitMs[st], 1).padStart(8)}`).join('')}`,
        );
      }
      const sum = (x: Record<Stage, number>) => STAGES.reduce((a, s) => a + x[s], 0);
      print(
        `  ${'total timed'.padEnd(18)}${ours.map((o) => `${f(sum(o.stages.ms), 1).padStart(16)}${''.padStart(9)}${f(sum(o.stages.waitMs), 1).padStart(8)}`).join('')}`,
      );
    }
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function readdirOnnx(dir: string): string {
  const f = readdirSync(dir).find((n) => n.endsWith('.onnx'));
  if (!f) throw new Error(`${dir}: no ONNX export`);
  return join(dir, f);
}

await main();

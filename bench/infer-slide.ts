/**
 * Whole-slide inference speed: slideseg's `inferSlide` (ONNX Runtime, the default backend) against a PyTorch +
 * OpenSlide reference pipeline (bench/infer_reference.py, Debian's python3-torch and python3-openslide) on the same
 * machine, in the same run, interleaved (slideseg, reference, slideseg, reference, ...), on exactly the same tissue
 * tiles: slideseg's run reports every tile it computed and the reference reads those level-0 regions.
 *
 * Model: SegFormer-B0, random init (seed 0), 2 labels, saved to a temp folder; 512-px tiles, overlap 64, 0.5 µm/px.
 * Timed window on both sides: after the first batch (warm-up: ONNX/Torch first-run costs) to the last batch.
 * slideseg's loop includes reading, decoding, resizing, normalising, the model, upsampling + softmax, blending,
 * argmax and writing label chunks; the reference stops at the logits (no upsampling, blending, argmax or writing).
 * CPU: the process's own CPU seconds per wall second (all threads: decode workers, ORT / Torch threads) and the
 * busy fraction of each core from /proc/stat over the same window (this includes anything else running).
 *
 * usage: npx tsx bench/infer-slide.ts [--slides a.svs,b.svs] [--max-tiles 16] [--batch 4] [--rounds 2]
 *                                     [--threads N] [--slide-mpp 0.25] [--json] [--no-torch]
 * --max-tiles caps the tiles per slide (the TCGA slide has ~hundreds of tissue tiles at 0.5 µm/px).
 * --slide-mpp is used for slides that do not state their resolution (the TCGA fixture does not).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ready } from '../src/engine/index.ts';
import { InferAbortedError, inferSlide } from '../src/infer/slide-infer.ts';
import { loadTileRunner } from '../src/infer/tile-runner.ts';
import { Segformer, saveSegformer, segformerPreset } from '../src/models/segformer/index.ts';
import { openSlide } from '../src/slide/index.ts';

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
    json: { type: 'boolean', default: false },
    'no-torch': { type: 'boolean', default: false },
  },
});
const maxTiles = Number(values['max-tiles']);
const batch = Number(values.batch);
const rounds = Number(values.rounds);
const threads = Number(values.threads);
const TILE = 512;
const OVERLAP = 64;
const MPP = 0.5;
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

interface TileRegion {
  level0X: number;
  level0Y: number;
}

async function runSlideseg(
  slide: string,
  model: string,
  out: string,
  slideMpp: number | undefined,
): Promise<{ result: SideResult; tiles: TileRegion[]; downsample: number }> {
  const tiles: TileRegion[] = [];
  let downsample = 1;
  const abort = new AbortController();
  let start: { t: number; cpu: NodeJS.CpuUsage; stat: [number, number][]; tiles: number } | undefined;
  let end: typeof start;
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
      onTile: (t) => {
        tiles.push({ level0X: t.level0X, level0Y: t.level0Y });
        downsample = t.level0Size / TILE;
      },
      onProgress: () => {
        const now = { t: performance.now(), cpu: process.cpuUsage(), stat: procStat(), tiles: tiles.length };
        if (!start) start = now;
        else end = now;
        if (tiles.length >= maxTiles) abort.abort();
      },
    });
  } catch (e) {
    if (!(e instanceof InferAbortedError)) throw e;
  }
  if (!start || !end) throw new Error(`${slide}: fewer than two batches of tissue tiles; nothing to time`);
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
    // Export to ONNX once, outside the timed runs (inferSlide caches the export under <out>/.cache).
    const cacheDir = join(tmp, 'onnx-cache');
    await (await loadTileRunner(model, { cacheDir, threads })).release();
    const onnx = readdirOnnx(cacheDir);

    const rows: Record<string, unknown>[] = [];
    for (const slide of values.slides!.split(',')) {
      const s = await openSlide(slide);
      const slideMpp = s.mpp?.x ? undefined : Number(values['slide-mpp']);
      await s.close();
      const ours: SideResult[] = [];
      const ref: SideResult[] = [];
      let tilesJson = '';
      for (let r = 0; r < rounds; r++) {
        const out = join(tmp, `out-${basename(slide)}-${r}`);
        log(`${basename(slide)} round ${r + 1}/${rounds}: slideseg…`);
        const o = await runSlideseg(slide, onnx, out, slideMpp);
        ours.push(o.result);
        rmSync(out, { recursive: true, force: true });
        if (!tilesJson) {
          tilesJson = join(tmp, `tiles-${basename(slide)}.json`);
          writeFileSync(
            tilesJson,
            JSON.stringify({
              slide,
              tile: TILE,
              batch,
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
        ratio: ourRate / refRate,
        ratiosPerRound: ref.map((x, i) => ours[i]!.tilesPerSecond / x.tilesPerSecond),
      });
    }
    const result = {
      model: 'SegFormer-B0 (random init, 2 labels)',
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
    // The table goes to stdout, or to stderr when stdout carries the JSON.
    const print = (line: string) => (values.json ? log(line) : console.log(line));
    const f = (x: number, d = 2) => x.toFixed(d);
    const cores = (x: SideResult) => x.systemCoreBusy.map((c) => `${(100 * c).toFixed(0)}%`).join('/');
    print(
      'slide                          round  tiles  slideseg t/s  reference t/s  ratio  proc cores (ours/ref)  per-core busy (ours | ref)',
    );
    for (const row of rows) {
      const ours = row.slideseg as SideResult[];
      const ref = row.reference as SideResult[];
      ours.forEach((o, i) => {
        const r = ref[i];
        print(
          `${String(row.slide).padEnd(30)} ${String(i + 1).padStart(5)}  ${String(o.timedTiles).padStart(5)}  ${f(o.tilesPerSecond).padStart(12)}  ${(r ? f(r.tilesPerSecond) : '-').padStart(13)}  ${(r ? f(o.tilesPerSecond / r.tilesPerSecond) : '-').padStart(5)}  ${`${f(o.coresBusy)}/${r ? f(r.coresBusy) : '-'}`.padStart(21)}  ${cores(o)} | ${r ? cores(r) : '-'}`,
        );
      });
      print(
        `${String(row.slide).padEnd(30)} median         ${f(row.slidesegTilesPerSecond as number).padStart(12)}  ${f(row.referenceTilesPerSecond as number).padStart(13)}  ${f(row.ratio as number).padStart(5)}`,
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

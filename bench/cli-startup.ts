/**
 * CLI start-up time: wall-clock of `slideseg --help`, `slideseg info --help` and `slideseg info SLIDE` (the compiled
 * CLI in dist/, as installed), next to OpenSlide's `openslide-show-properties` (Debian openslide-tools) on the same
 * slide and a bare `node -e 0`, interleaved, median of N runs each.
 *
 *   node --import tsx bench/cli-startup.ts [--runs 10] [--slide FILE]
 *
 * It builds dist/ first (`npm run build`), so bin/slideseg.js runs the compiled JavaScript as an installed package does.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    slide: { type: 'string', default: join(ROOT, 'samples', 'cmu-1-small-region.svs') },
  },
});
const RUNS = Number(values.runs);
const CLI = join(ROOT, 'bin', 'slideseg.js');
execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js')))
  throw new Error('bench/cli-startup: the build wrote no dist/');

const cases: { name: string; cmd: string; args: string[] }[] = [
  { name: 'node -e 0 (floor)', cmd: process.execPath, args: ['-e', '0'] },
  { name: 'slideseg --help', cmd: process.execPath, args: [CLI, '--help'] },
  { name: 'slideseg info --help', cmd: process.execPath, args: [CLI, 'info', '--help'] },
  { name: 'slideseg info SLIDE', cmd: process.execPath, args: [CLI, 'info', values.slide!] },
];
const hasOpenSlide = spawnSync('which', ['openslide-show-properties']).status === 0;
if (hasOpenSlide) {
  cases.push({
    name: 'openslide-show-properties SLIDE',
    cmd: 'openslide-show-properties',
    args: [values.slide!],
  });
} else console.error('openslide-show-properties not found (apt-get install openslide-tools): not compared');

/**
 * Wall time, and the CPU time (user + system) of the child from /usr/bin/time: start-up is single-threaded, so on
 * a loaded machine the CPU time is what the wall time would be on a quiet one.
 */
const times = new Map<string, { wall: number[]; cpu: number[] }>(
  cases.map((c) => [c.name, { wall: [], cpu: [] }]),
);
const TIME = '/usr/bin/time';
const hasTime = existsSync(TIME);
for (let r = 0; r < RUNS; r++) {
  for (const c of cases) {
    const t0 = performance.now();
    const res = hasTime
      ? spawnSync(TIME, ['-f', '%U %S', c.cmd, ...c.args], { encoding: 'utf8' })
      : spawnSync(c.cmd, c.args, { encoding: 'utf8' });
    const wall = (performance.now() - t0) / 1000;
    if (res.status !== 0) throw new Error(`${c.name} failed: ${res.stderr}`);
    const t = times.get(c.name)!;
    t.wall.push(wall);
    const cpu = hasTime ? res.stderr.trim().split('\n').at(-1)!.split(' ').map(Number) : [Number.NaN];
    t.cpu.push(cpu.reduce((x, y) => x + y, 0));
  }
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const osp = hasOpenSlide ? median(times.get('openslide-show-properties SLIDE')!.wall) : undefined;
console.log(
  `| command | median wall (s), ${RUNS} runs | min wall | median CPU (s) | wall vs openslide-show-properties |`,
);
console.log('|---|---:|---:|---:|---:|');
for (const c of cases) {
  const t = times.get(c.name)!;
  const m = median(t.wall);
  const ratio = osp ? `${(m / osp).toFixed(1)}×` : '–';
  console.log(
    `| ${c.name} | ${m.toFixed(3)} | ${Math.min(...t.wall).toFixed(3)} | ${median(t.cpu).toFixed(3)} | ${ratio} |`,
  );
}
console.log(
  `load average at the end: ${(await import('node:os'))
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);

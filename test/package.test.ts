/**
 * The package as users get it: compiled ESM + .d.ts in dist/ loaded by plain Node (no tsx), the root export and
 * every subpath export, subpaths that load only their own dependencies, and the files `npm pack` ships.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { fixture, ROOT } from './fixtures.ts';

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { types: string; default: string }>;
};
const SAMPLE = join(ROOT, 'samples', 'cmu-1-small-region.svs');
const ZARR = fixture('zarr', 'blobs-v04.ome.zarr');

before(() => {
  // `npm test` builds first (pretest); a lone run of this file builds if dist/ is missing.
  if (!existsSync(join(ROOT, 'dist', 'index.js')))
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT });
});

/** Runs an ES module snippet under plain node from the repository root (`slideseg` resolves to this package). */
async function node(code: string, execArgv: string[] = []): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [...execArgv, '--input-type=module', '-e', code], { cwd: ROOT });
}

test("plain node imports 'slideseg' from dist/ and reads the sample slide", async () => {
  const { stdout } = await node(`
    const m = await import('slideseg');
    const s = await m.openSlide(${JSON.stringify(SAMPLE)});
    const r = await s.readRegion({ x: 0, y: 0, level: 0, width: 8, height: 8 });
    const z = await m.openSlide(${JSON.stringify(ZARR)});
    const zarrLevels = z.levels.length;
    await z.close();
    console.log(JSON.stringify({ format: s.format, size: [s.levels[0].width, s.levels[0].height], px: r.data.length, zarrLevels,
      api: ['Segformer', 'diceLoss', 'train', 'inferSlide', 'predict', 'ConfusionMatrix'].map((k) => typeof m[k]),
      names: Object.keys(m) }));
    await s.close();`);
  const r = JSON.parse(stdout) as {
    format: string;
    size: number[];
    px: number;
    zarrLevels: number;
    api: string[];
    names: string[];
  };
  assert.equal(r.format, 'aperio-svs');
  assert.deepEqual(r.size, [2220, 2967]);
  assert.equal(r.px, 8 * 8 * 4);
  assert.ok(r.zarrLevels >= 1, 'OME-Zarr opens from the compiled package (its reader is loaded lazily)');
  assert.deepEqual(r.api, ['function', 'function', 'function', 'function', 'function', 'function']);
  // The root is a curated list: nothing from the CLI, the demo or the queue.
  for (const internal of [
    'SLIDE_JOB_OPTIONS',
    'inferArgsOf',
    'runDemo',
    'runWorker',
    'enqueueManifest',
    'command',
  ]) {
    assert.ok(!r.names.includes(internal), `${internal} is not exported from the root`);
  }
  assert.ok(r.names.length < 80, `${r.names.length} root exports`);
});

test('every subpath export loads under plain node and has its .d.ts', async () => {
  for (const [sub, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue; // ./package.json
    if (sub === './browser') continue; // for bundlers: test/browser-entry.test.ts
    assert.ok(existsSync(join(ROOT, target.types)), `${sub}: ${target.types}`);
    const spec = `slideseg${sub.slice(1)}`;
    const { stdout } = await node(`const m = await import('${spec}'); console.log(Object.keys(m).length);`);
    assert.ok(Number(stdout) > 0, `${spec} exports names`);
  }
});

test("'slideseg/slide' loads neither TF.js, ONNX Runtime nor the queue clients", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slideseg-pkg-'));
  const hooks = join(dir, 'hooks.mjs');
  const log = join(dir, 'loaded.txt');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
     export async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }`,
  );
  const register = join(dir, 'register.mjs');
  writeFileSync(
    register,
    `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hooks).href)});`,
  );
  await node(
    `const { openSlide } = await import('slideseg/slide'); const s = await openSlide(${JSON.stringify(SAMPLE)});
     await s.readRegion({ x: 0, y: 0, level: 0, width: 256, height: 256 }); await s.close();`,
    ['--import', pathToFileURL(register).href],
  );
  const loaded = readFileSync(log, 'utf8');
  assert.match(loaded, /dist\/slide\/index\.js/);
  for (const heavy of ['@tensorflow', 'onnxruntime', 'bullmq', 'ioredis', '/tsx/']) {
    assert.ok(!loaded.includes(heavy), `slideseg/slide loaded ${heavy}`);
  }
});

test('npm pack ships dist (JS + .d.ts), the CLI and the demo sample, and no sources or tests', async () => {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT });
  const files = (JSON.parse(stdout) as { files: { path: string; size: number }[] }[])[0]!.files;
  const paths = new Set(files.map((f) => f.path));
  for (const p of [
    'dist/index.js',
    'dist/index.d.ts',
    'dist/cli/main.js',
    'bin/slideseg.js',
    'package.json',
  ]) {
    assert.ok(paths.has(p), `${p} in the tarball`);
  }
  assert.ok(paths.has('samples/cmu-1-small-region.svs'), 'the demo slide');
  assert.ok(![...paths].some((p) => p.startsWith('src/') || p.startsWith('test/')), 'no sources or tests');
  for (const f of files) {
    if (f.path !== 'samples/cmu-1-small-region.svs')
      assert.ok(f.size < 2 ** 20, `${f.path}: ${f.size} bytes`);
  }
});

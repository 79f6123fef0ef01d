/**
 * Full-resolution polygon stream (the GeoJSON of `slideseg infer`): label pixels scanned and nuclei written per
 * second on a synthetic N × N map (discs of 10 px every 48 px, in bands of 512 rows generated on the fly), and the
 * size of the file. Shapely is not involved: validity is the tests' job, this is throughput only.
 *
 *   node --import tsx bench/infer-polygons.ts [--size 16384] [--mode objects|classes] [--simplify 0]
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PolygonStreamer } from '../src/infer/polygons.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '16384' },
    mode: { type: 'string', default: 'objects' },
    simplify: { type: 'string', default: '0' },
  },
});
const N = Number(values.size);
const SPACING = 48;
const BAND = 512;
const dir = await mkdtemp(join(tmpdir(), 'bench-polygons-'));
const path = join(dir, 'bench.geojson');
try {
  const stream = new PolygonStreamer({
    path,
    mode: values.mode as 'objects' | 'classes',
    width: N,
    classes: { 1: { name: 'nucleus', color: [200, 0, 0] } },
    simplify: Number(values.simplify),
  });
  const band = new Uint8Array(N * BAND);
  let fillMs = 0;
  const t0 = performance.now();
  for (let y0 = 0; y0 < N; y0 += BAND) {
    const rows = Math.min(BAND, N - y0);
    const f0 = performance.now();
    band.fill(0);
    for (let r = 0; r < rows; r++) {
      const y = y0 + r;
      const dy = y + 0.5 - (Math.floor(y / SPACING) * SPACING + SPACING / 2);
      if (dy * dy > 25) continue;
      const half = Math.sqrt(25 - dy * dy);
      for (let cx = SPACING / 2; cx + SPACING / 2 <= N; cx += SPACING) {
        for (let x = Math.ceil(cx - half - 0.5); x + 0.5 <= cx + half; x++) band[r * N + x] = 1;
      }
    }
    fillMs += performance.now() - f0;
    await stream.addBand(band.subarray(0, rows * N), rows);
  }
  const summary = await stream.finish();
  const seconds = (performance.now() - t0 - fillMs) / 1000;
  const bytes = (await stat(path)).size;
  console.log(
    `${N}×${N} (${((N * N) / 1e6).toFixed(0)} Mpx), ${summary.objects} nuclei, mode ${values.mode}: ` +
      `${seconds.toFixed(1)} s = ${((N * N) / 1e6 / seconds).toFixed(1)} Mpx/s, ` +
      `${(summary.objects / seconds).toFixed(0)} objects/s, ${(bytes / 2 ** 20).toFixed(1)} MiB GeoJSON`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}

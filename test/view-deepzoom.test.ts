/**
 * The viewer's Deep Zoom layout against OpenSlide's own DeepZoomGenerator (Debian python3-openslide, tile 254,
 * overlap 1, limit_bounds off — what its deepzoom server serves): level count and sizes, tiles per level, each
 * tile's size and level-0 position, and the pixels of tiles at full and reduced resolution.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { openSlide } from '../src/slide/index.ts';
import type { Slide } from '../src/slide/types.ts';
import { deepZoomGeometry, slideTileJpeg, TILE_SIZE, tileRect } from '../src/view/deepzoom.ts';
import { ROOT } from './fixtures.ts';

const CMU = join(ROOT, 'samples', 'cmu-1-small-region.svs');
const PY = '/usr/bin/python3';
let dir: string;
let slide: Slide;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'view-dz-'));
  slide = await openSlide(CMU);
});
after(async () => {
  await slide.close();
  await rm(dir, { recursive: true, force: true });
});

const OPENSLIDE = `
import json, sys, openslide
from openslide.deepzoom import DeepZoomGenerator
s = openslide.OpenSlide(sys.argv[1])
dz = DeepZoomGenerator(s, tile_size=254, overlap=1, limit_bounds=False)
tiles = {}
for spec in sys.argv[3:]:
    level, col, row = map(int, spec.split(','))
    (l0, slide_level, size) = dz.get_tile_coordinates(level, (col, row))
    tiles[spec] = {'l0': l0, 'dims': dz.get_tile_dimensions(level, (col, row))}
    dz.get_tile(level, (col, row)).convert('RGB').save(f"{sys.argv[2]}/{level}_{col}_{row}.png")
print(json.dumps({'levels': dz.level_dimensions, 'tiles_per_level': dz.level_tiles, 'tiles': tiles}))
`;

test('Deep Zoom geometry and tiles match OpenSlide’s DeepZoomGenerator', async () => {
  const { width, height } = slide.levels[0]!;
  const g = deepZoomGeometry(width, height);
  const top = g.levels.length - 1;
  const specs = [
    [top, 0, 0],
    [top, 3, 5],
    [top, Math.ceil(width / TILE_SIZE) - 1, Math.ceil(height / TILE_SIZE) - 1],
    [top - 1, 1, 2],
    [top - 3, 0, 0],
  ];
  const ref = JSON.parse(
    execFileSync(PY, ['-c', OPENSLIDE, CMU, dir, ...specs.map((s) => s.join(','))], { encoding: 'utf8' }),
  );
  assert.deepEqual(g.levels, ref.levels);
  assert.deepEqual(
    g.levels.map(([w, h]) => [Math.ceil(w / TILE_SIZE), Math.ceil(h / TILE_SIZE)]),
    ref.tiles_per_level,
  );
  for (const [level, col, row] of specs as [number, number, number][]) {
    const key = `${level},${col},${row}`;
    const r = tileRect(g, level, col, row)!;
    assert.deepEqual([r.width, r.height], ref.tiles[key].dims, `${key} size`);
    assert.deepEqual([r.x * r.downsample, r.y * r.downsample], ref.tiles[key].l0, `${key} level-0 position`);
    const ours = await sharp(await slideTileJpeg(slide, r))
      .raw()
      .toBuffer({ resolveWithObject: true });
    const theirs = await sharp(join(dir, `${level}_${col}_${row}.png`))
      .raw()
      .toBuffer({ resolveWithObject: true });
    assert.deepEqual([ours.info.width, ours.info.height], [theirs.info.width, theirs.info.height]);
    let sum = 0;
    for (let i = 0; i < ours.data.length; i++) sum += Math.abs(ours.data[i]! - theirs.data[i]!);
    const mean = sum / ours.data.length;
    // JPEG q90 at full resolution; at reduced levels also different (but both area-like) resampling filters.
    assert.ok(mean < (level === top ? 4 : 8), `${key}: mean abs difference ${mean.toFixed(2)}`);
  }
  assert.equal(tileRect(g, top + 1, 0, 0), null);
  assert.equal(tileRect(g, top, -1, 0), null);
  assert.equal(tileRect(g, 0, 1, 0), null);
});

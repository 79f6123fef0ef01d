/**
 * Hostile annotation files: references confined to their data set's folder, linear-time parsing with limits,
 * and one-line errors naming the file for everything malformed.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readAnnotations } from '../src/annotations/index.ts';

const TMP = await mkdtemp(join(tmpdir(), 'slideseg-hostile-ann-'));
after(() => rm(TMP, { recursive: true, force: true }));

const SQUARE = JSON.stringify({
  type: 'Feature',
  geometry: {
    type: 'Polygon',
    coordinates: [
      [
        [0, 0],
        [10, 0],
        [10, 10],
        [0, 10],
        [0, 0],
      ],
    ],
  },
  properties: { classification: { name: 'tumor' } },
});

describe('annotation references stay inside their root', () => {
  test('a symlink out of the root is refused; a file inside is read', async () => {
    const root = join(TMP, 'dataset');
    const outside = join(TMP, 'outside.geojson');
    await writeFile(outside, SQUARE);
    await rm(root, { recursive: true, force: true });
    await mkdir(root);
    await writeFile(join(root, 'inside.geojson'), SQUARE);
    await symlink(outside, join(root, 'link.geojson'));
    const ok = await readAnnotations(join(root, 'inside.geojson'), { root });
    assert.equal(ok.polygons.length, 1);
    await assert.rejects(readAnnotations(join(root, 'link.geojson'), { root }), (err: Error) => {
      assert.match(err.message, /^\S+link\.geojson: resolves to .*outside/);
      return true;
    });
    await assert.rejects(readAnnotations(join(root, '..', 'outside.geojson'), { root }), /outside/);
    // Without a root the caller trusts the path.
    assert.equal((await readAnnotations(join(root, 'link.geojson'))).polygons.length, 1);
  });
});

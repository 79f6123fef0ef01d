/**
 * Where the tests find their golden data.
 *
 * - `test/fixtures/` (in the repository): the small golden files the core suite needs, each < 1 MB, with their
 *   origin in `test/fixtures/README.md`. A fresh clone passes `npm test` with these alone.
 * - `../shared/fixtures` (override with SLIDESEG_FIXTURES): the large shared data (MoNuSeg, the J2K slide, derived
 *   pyramids, the B0 checkpoint). Tests that need it declare so with `needs(...)`, and skip with one line saying
 *   what is missing when it is absent. CI sets SLIDESEG_REQUIRE_FIXTURES=1, which turns every such skip into a
 *   failure, so CI runs everything.
 *
 * `fixture(...parts)` resolves a path in the vendored folder first, then in the shared one.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Vendored golden files (always present). */
export const LOCAL_FIXTURES = join(ROOT, 'test', 'fixtures');
/** The large shared data; may be absent on a fresh clone. */
export const SHARED_FIXTURES = process.env.SLIDESEG_FIXTURES ?? resolve(ROOT, '../shared/fixtures');
/** @deprecated kept for tests that list a shared folder; prefer `fixture()`. */
export const FIXTURES = SHARED_FIXTURES;
const REQUIRE_SHARED = process.env.SLIDESEG_REQUIRE_FIXTURES === '1';

/** Shared fixtures that the repository already holds elsewhere (same bytes), so they are not vendored twice. */
const IN_REPO: Record<string, string> = {
  'slides/cmu-1-small-region.svs': join(ROOT, 'samples', 'cmu-1-small-region.svs'),
};

/** Path of a fixture: the vendored copy when there is one, else the shared data's. */
export function fixture(...parts: string[]): string {
  const inRepo = IN_REPO[parts.join('/')];
  if (inRepo) return inRepo;
  const local = join(LOCAL_FIXTURES, ...parts);
  return existsSync(local) ? local : join(SHARED_FIXTURES, ...parts);
}

/** True when every fixture path exists (vendored or shared). */
export function hasFixtures(...paths: string[][]): boolean {
  return paths.every((p) => existsSync(fixture(...p)));
}

/**
 * The skip reason for a test that needs these fixtures (each a path as `fixture()` takes it), or `false` when all
 * are there: `test('…', { skip: needs(['monuseg']) }, …)`. With SLIDESEG_REQUIRE_FIXTURES=1 a missing fixture
 * throws instead, so the suite fails rather than skipping.
 */
export function needs(...paths: string[][]): string | false {
  const missing = paths.filter((p) => !existsSync(fixture(...p))).map((p) => p.join('/'));
  if (missing.length === 0) return false;
  const reason =
    `needs shared fixture${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: not found in test/fixtures or ` +
    `${SHARED_FIXTURES} (check out the shared data beside the repository or set SLIDESEG_FIXTURES)`;
  if (REQUIRE_SHARED) throw new Error(`SLIDESEG_REQUIRE_FIXTURES=1 but ${reason}`);
  return reason;
}

/**
 * Entries of a fixture folder, vendored and shared together (sorted, no duplicates), so a test looping over a
 * folder sees the shared entries too when they are there; pair it with `needs()` per entry.
 */
export function listFixtures(...parts: string[]): string[] {
  const names = new Set<string>();
  for (const dir of [join(LOCAL_FIXTURES, ...parts), join(SHARED_FIXTURES, ...parts)]) {
    if (existsSync(dir)) for (const n of readdirSync(dir)) names.add(n);
  }
  return [...names].sort();
}

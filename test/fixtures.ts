/** Paths to the shared golden fixtures (read-only, never copied into the repo). */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES = process.env.SLIDESEG_FIXTURES ?? resolve(ROOT, '../shared/fixtures');

if (!existsSync(FIXTURES)) {
  throw new Error(`fixtures not found at ${FIXTURES}: set SLIDESEG_FIXTURES or check out ../shared/fixtures`);
}

export function fixture(...parts: string[]): string {
  return join(FIXTURES, ...parts);
}

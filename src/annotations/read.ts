/** Reads an annotation file, Aperio XML or GeoJSON, chosen by content. */
import { readFile } from 'node:fs/promises';
import { parseAperioXml } from './aperio.ts';
import { parseGeoJSON } from './geojson.ts';
import type { AnnotationSet } from './types.ts';

export async function readAnnotations(path: string): Promise<AnnotationSet> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(
      `${path}: cannot read annotations (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  const start = text.trimStart().slice(0, 1);
  if (start === '<') return parseAperioXml(text, path);
  if (start === '{' || start === '[') return parseGeoJSON(text, path);
  throw new Error(`${path}: not an annotation file (expected Aperio XML or GeoJSON)`);
}

/** Reads an annotation file, Aperio XML or GeoJSON, chosen by content. */
import { readFile, realpath, stat } from 'node:fs/promises';
import { isInside } from '../slide/confine.ts';
import { parseAperioXml } from './aperio.ts';
import { AnnotationError } from './errors.ts';
import { parseGeoJSON } from './geojson.ts';
import type { AnnotationSet } from './types.ts';

/** Annotation files larger than this are refused before reading (the largest real ones are a few tens of MB). */
export const MAX_ANNOTATION_BYTES = 512 * 1024 * 1024;

export interface ReadAnnotationsOptions {
  /**
   * A folder the file must lie in once symlinks are resolved (e.g. the folder of the data set that refers to it),
   * so that a reference from an untrusted data set file cannot read elsewhere. Default: no restriction.
   */
  root?: string;
}

export async function readAnnotations(
  path: string,
  opts: ReadAnnotationsOptions = {},
): Promise<AnnotationSet> {
  let text: string;
  try {
    if (opts.root !== undefined) {
      const [rootReal, real] = await Promise.all([realpath(opts.root), realpath(path)]);
      if (!isInside(rootReal, real)) {
        throw new AnnotationError(
          `${path}: resolves to ${real}, outside ${opts.root} (annotation references must stay inside it)`,
        );
      }
    }
    const { size } = await stat(path);
    if (size > MAX_ANNOTATION_BYTES)
      throw new AnnotationError(
        `${path}: annotation file of ${size} bytes is too large (limit ${MAX_ANNOTATION_BYTES})`,
      );
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (e instanceof AnnotationError) throw e;
    throw new AnnotationError(
      `${path}: cannot read annotations (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      { cause: e },
    );
  }
  const start = text.trimStart().slice(0, 1);
  if (start === '<') return parseAperioXml(text, path);
  if (start === '{' || start === '[') return parseGeoJSON(text, path);
  throw new AnnotationError(`${path}: not an annotation file (expected Aperio XML or GeoJSON)`);
}

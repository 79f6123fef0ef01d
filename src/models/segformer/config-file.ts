/** Reading a Hugging Face `config.json` from disk (Node only; the rest of the config module runs anywhere). */

import { readFile } from 'node:fs/promises';
import { CheckpointError } from '../../core/errors.ts';
import { normalizeConfig, type SegformerConfig } from './config.ts';

/** Reads and parses a checkpoint's config.json (one-line errors naming the file). */
export async function readSegformerConfig(path: string): Promise<SegformerConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(
      code === 'ENOENT'
        ? `${path}: not found`
        : `${path}: cannot read config (${code ?? (e as Error).message})`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${path}: config is not valid JSON (${(e as Error).message})`);
  }
  return normalizeConfig(raw, path);
}

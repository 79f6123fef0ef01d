/** Reading a Hugging Face `config.json` from disk (Node only; the rest of the config module runs anywhere). */
import { readFile } from 'node:fs/promises';
import { normalizeConfig, type SegformerConfig } from './config.ts';

export async function readSegformerConfig(path: string): Promise<SegformerConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(
      `${path}: cannot read config (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: config is not valid JSON (${(e as Error).message})`);
  }
  return normalizeConfig(raw, path);
}

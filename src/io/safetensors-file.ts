/** Reading and writing `.safetensors` files (Node only; the format itself is in `safetensors.ts`). */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../core/atomic-write.ts';
import {
  parseSafetensors,
  type SafeTensor,
  SafetensorsError,
  type SafetensorsFile,
  serializeSafetensors,
} from './safetensors.ts';

export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new SafetensorsError(
      path,
      `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      { cause: e },
    );
  }
  return parseSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path);
}

/** Writes atomically: to a temporary name, then rename, so a killed process never leaves half a file. */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<[string, SafeTensor]>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

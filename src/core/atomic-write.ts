/**
 * Writes that never leave half a file: the bytes go to a temporary name beside the target, then one rename puts
 * them in place, so a reader (or a resumed run) sees the old file or the new one, never a torn one.
 */
import { rename, rm, writeFile } from 'node:fs/promises';

/** Writes `data` to `path` through `<path>.tmp-<pid>` and a rename. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** `value` as indented JSON with a trailing newline, written atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Writes that never leave half a file: the bytes go to a temporary name beside the target, then one rename puts
 * them in place, so a reader (or a resumed run) sees the old file or the new one, never a torn one.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes `data` to `path` through `<path>.tmp-<pid>-<random>` and a rename (unique, so two writers of one path in
 * one process cannot collide); `mkdir` creates the folder first.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: { mkdir?: boolean } = {},
): Promise<void> {
  if (opts.mkdir) await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** `value` as indented JSON with a trailing newline, written atomically. */
export async function writeJsonAtomic(
  path: string,
  value: unknown,
  opts: { mkdir?: boolean } = {},
): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, opts);
}

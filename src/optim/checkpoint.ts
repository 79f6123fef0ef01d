/**
 * Crash-safe checkpoints. Each save is a complete folder written under a temporary name and renamed into place;
 * `latest.json` (itself written to a temporary file and renamed) then points at it. A process killed at any
 * moment therefore leaves `latest.json` naming a complete checkpoint, old or new.
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../core/atomic-write.ts';

/** Writes a checkpoint folder via `write(tmpDir)`, renames it to `name`, then points `pointer` at it. */
export async function commitFolder(
  parent: string,
  name: string,
  pointer: string,
  write: (dir: string) => Promise<void>,
  extra: Record<string, unknown> = {},
): Promise<string> {
  await mkdir(parent, { recursive: true });
  const tmp = join(parent, `.${name}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  await write(tmp);
  const final = join(parent, name);
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  await writeJsonAtomic(join(parent, pointer), { dir: name, ...extra });
  return final;
}

/** The folder a pointer file names, or null when there is none yet. */
export async function readPointer(
  parent: string,
  pointer: string,
): Promise<{ dir: string; [k: string]: unknown } | null> {
  try {
    const p = JSON.parse(await readFile(join(parent, pointer), 'utf8'));
    return { ...p, dir: join(parent, p.dir) };
  } catch {
    return null;
  }
}

/** Removes checkpoint folders matching `prefix` beyond the newest `keep`, and stale temporary folders. */
export async function pruneFolders(
  parent: string,
  prefix: string,
  keep: number,
  protect: string[],
): Promise<void> {
  const entries = await readdir(parent).catch(() => [] as string[]);
  const stale = entries.filter((e) => e.startsWith('.') && e.includes('.tmp-'));
  const ckpts = entries.filter((e) => e.startsWith(prefix)).sort();
  const drop = ckpts.slice(0, Math.max(0, ckpts.length - keep)).filter((e) => !protect.includes(e));
  await Promise.all([...stale, ...drop].map((e) => rm(join(parent, e), { recursive: true, force: true })));
}

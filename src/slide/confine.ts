/**
 * Keeps reads of a multi-file source (an OME-Zarr folder, files a data set refers to) inside its root folder:
 * keys must be relative without '..', and the real path of what is read (symlinks resolved) must lie under the
 * root's real path. Symlinks out of the root are refused unless the caller says the data is trusted.
 */
import { realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';

/** Why a store key cannot name a file under the root, or null when it can. */
export function unsafeKeyReason(key: string): string | null {
  if (key.includes('\0')) return 'contains a NUL byte';
  if (key.includes('\\')) return 'contains a backslash';
  if (/^[a-z]:/i.test(key) || key.startsWith('//')) return 'is an absolute path';
  if (key.split('/').some((part) => part === '..')) return "contains a '..' segment";
  return null;
}

/** True when `path` (absolute, real) is `root` or lies inside it. */
export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

export class OutsideRootError extends Error {
  override name = 'OutsideRootError';
}

/**
 * The real path of `key` under `rootReal` (itself a real path), or undefined when no such file exists.
 * Throws OutsideRootError when the key is unsafe or resolves (through symlinks) outside the root and
 * `allowSymlinksOutside` is false.
 */
export async function confinedRealPath(
  rootReal: string,
  key: string,
  allowSymlinksOutside = false,
): Promise<string | undefined> {
  const bad = unsafeKeyReason(key);
  if (bad) throw new OutsideRootError(`key "${key}" ${bad}`);
  const path = join(rootReal, key.replace(/^\/+/, ''));
  let real: string;
  try {
    real = await realpath(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
  if (!allowSymlinksOutside && !isInside(rootReal, real)) {
    throw new OutsideRootError(
      `${key.replace(/^\/+/, '')} resolves to ${real}, outside the store folder (a symlink out of it; pass allowSymlinksOutside for trusted local data)`,
    );
  }
  return real;
}

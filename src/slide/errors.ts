import { SlidesegError } from '../core/errors.ts';

/**
 * Errors about one slide (code 'slide' in the library's error family): the message always names the file (or URL)
 * and the problem, on one line; `cause` keeps the original error.
 */
export class SlideError extends SlidesegError {
  override name = 'SlideError';
  override readonly code = 'slide';
  readonly reason: string;
  constructor(
    readonly source: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    const line = oneLine(reason);
    super(`${source}: ${line}`, options);
    this.reason = line;
  }
}

/**
 * Folds a multi-line reason (libvips repeats its message on several lines, zarrita nests causes) into one line:
 * lines trimmed, empty and repeated lines dropped, joined with '; '.
 */
export function oneLine(reason: string): string {
  const lines = reason
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return [...new Set(lines)].join('; ');
}

/** Wraps any thrown value as a SlideError for `source`, keeping SlideErrors as they are (the original as `cause`). */
export function asSlideError(source: string, err: unknown): SlideError {
  if (err instanceof SlideError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  // Messages of the Zarr reader already start with the source; do not name it twice.
  const bare = reason.startsWith(`${source}: `) ? reason.slice(source.length + 2) : reason;
  return new SlideError(source, bare, { cause: err });
}

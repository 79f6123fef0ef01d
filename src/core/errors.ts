/**
 * One error family for the library: every error slideseg raises on purpose is a `SlidesegError` with a `code` that
 * says which area failed (`usage`, `slide`, `checkpoint`, `image`, `aborted`, …) and the original error kept as
 * `cause`. Messages are one line naming the file or flag and the problem; the CLI prints them as they are.
 */
export class SlidesegError extends Error {
  override name = 'SlidesegError';
  /** The area of the failure; subclasses fix it. */
  readonly code: string = 'error';
}

/** True for any error of the family. */
export function isSlidesegError(e: unknown): e is SlidesegError {
  return e instanceof SlidesegError;
}

/** The chain of causes below an error, outermost first (for --verbose). */
export function causeChain(e: unknown): unknown[] {
  const chain: unknown[] = [];
  let cur = (e as { cause?: unknown })?.cause;
  while (cur !== undefined && chain.length < 10) {
    chain.push(cur);
    cur = (cur as { cause?: unknown })?.cause;
  }
  return chain;
}

/** A checkpoint folder, config or weights file that cannot be used; the message names the file. */
export class CheckpointError extends SlidesegError {
  override name = 'CheckpointError';
  override readonly code = 'checkpoint';
}

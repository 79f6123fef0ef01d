/** Errors about one slide: the message always names the file (or URL) and the problem, on one line. */
export class SlideError extends Error {
  override name = 'SlideError';
  constructor(
    readonly source: string,
    readonly reason: string,
  ) {
    super(`${source}: ${reason}`);
  }
}

/** Wraps any thrown value as a SlideError for `source`, keeping SlideErrors as they are. */
export function asSlideError(source: string, err: unknown): SlideError {
  if (err instanceof SlideError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new SlideError(source, reason);
}

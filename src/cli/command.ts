import { isSlidesegError, SlidesegError } from '../core/errors.ts';

/** The contract every `src/cli/commands/<name>.ts` module fulfils: `export const command: Command`. */
export interface Command {
  /** The sub-command name, e.g. 'predict'. */
  name: string;
  /**
   * Options renamed so that each flag means one thing across commands (`--out` is always a folder): the old
   * spelling gets a usage error that names the new one.
   */
  renamedOptions?: Record<string, string>;
  /** One line for `slideseg --help`. */
  summary: string;
  /** Full usage text for `slideseg <name> --help`. */
  usage: string;
  /** Runs the command; returns the exit code (0 when omitted). Throw an Error for a one-line failure message. */
  run(args: string[]): Promise<number | undefined>;
}

/** A usage error: shown as one line, exit code 2. */
export class UsageError extends SlidesegError {
  override name = 'UsageError';
  override readonly code = 'usage';
}

export function isUsageError(e: unknown): boolean {
  return isSlidesegError(e) && e.code === 'usage';
}

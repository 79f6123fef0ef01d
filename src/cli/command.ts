/** The contract every `src/cli/commands/<name>.ts` module fulfils: `export const command: Command`. */
export interface Command {
  /** The sub-command name, e.g. 'predict'. */
  name: string;
  /** One line for `slideseg --help`. */
  summary: string;
  /** Full usage text for `slideseg <name> --help`. */
  usage: string;
  /** The command gives `--backend` its own meaning (e.g. infer: onnx|tfjs), so main leaves it in the arguments. */
  ownsBackendOption?: boolean;
  /** Runs the command; returns the exit code (0 when omitted). Throw an Error for a one-line failure message. */
  run(args: string[]): Promise<number | undefined>;
}

/** An error whose message is shown to the user as is (no stack trace). */
export class UsageError extends Error {
  override name = 'UsageError';
}

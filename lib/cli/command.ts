/** A CLI subcommand: takes its arguments, returns the exit code. Output goes to stdout (data) and stderr (talk). */
export type Command = (args: string[]) => Promise<number>;

/** A mistake in the command line: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

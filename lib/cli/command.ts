/** A CLI subcommand: takes its arguments, returns the exit code. Output goes to stdout (data) and stderr (talk). */
export type Command = (args: string[]) => Promise<number>;

/** A mistake in the command line: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Runs the handler of a command's verb (`users add`, `trust rm`). `aliases` maps other spellings onto a verb
 * (`remove` → `rm`); an unknown verb is a usage error naming the verbs: `trust takes add, list or rm, got "x"`.
 */
export function runVerb(command: string, verb: string | undefined, handlers: Record<string, () => Promise<number>>, aliases: Record<string, string> = {}): Promise<number> {
  const name = verb !== undefined && Object.hasOwn(aliases, verb) ? aliases[verb]! : verb;
  if (name === undefined || !Object.hasOwn(handlers, name)) {
    const verbs = Object.keys(handlers);
    throw new UsageError(`${command} takes ${verbs.length > 1 ? `${verbs.slice(0, -1).join(', ')} or ${verbs.at(-1)}` : verbs[0]}, got "${verb ?? ''}"`);
  }
  return handlers[name]!();
}

import { describe, expect, it } from 'vitest';
import { runVerb, UsageError } from '../../lib/cli/command.ts';

describe('runVerb', () => {
  const handlers = {
    add: async () => 10,
    list: async () => 11,
    rm: async () => 12,
  };

  it('runs the handler of the verb, and of the verb an alias names', async () => {
    expect(await runVerb('trust', 'list', handlers, { remove: 'rm' })).toBe(11);
    expect(await runVerb('trust', 'remove', handlers, { remove: 'rm' })).toBe(12);
  });

  it('refuses an unknown or missing verb with a usage error naming the verbs, aliases left out', () => {
    expect(() => runVerb('trust', 'frob', handlers, { remove: 'rm' })).toThrow(new UsageError('trust takes add, list or rm, got "frob"'));
    expect(() => runVerb('trust', undefined, handlers)).toThrow(new UsageError('trust takes add, list or rm, got ""'));
    expect(() => runVerb('teams members', 'list', { add: handlers.add, rm: handlers.rm })).toThrow('teams members takes add or rm, got "list"');
  });

  it('does not take an object property for a verb', () => {
    expect(() => runVerb('trust', 'constructor', handlers)).toThrow(UsageError);
    expect(() => runVerb('trust', 'toString', handlers, {})).toThrow(UsageError);
  });
});

import { describe, expect, it } from 'vitest';
import { ColdStart } from '../../lambdas/cold-start.ts';

describe('ColdStart', () => {
  it('forgets a failed attempt, so the next get() tries again, and keeps the first success', async () => {
    const outcomes = [new Error('throttled'), 'app', 'never'];
    let attempts = 0;
    const init = new ColdStart(async () => {
      const outcome = outcomes[attempts++]!;
      if (outcome instanceof Error) throw outcome;
      return outcome;
    });

    await expect(init.get()).rejects.toThrow('throttled');
    const second = await init.get();
    const third = await init.get();

    expect([second, third, attempts]).toEqual(['app', 'app', 2]);
  });

  it('shares the attempt in flight between concurrent callers', async () => {
    let attempts = 0;
    let finish: (value: string) => void = () => undefined;
    const init = new ColdStart(() => {
      attempts++;
      return new Promise<string>((resolve) => (finish = resolve));
    });

    const both = Promise.all([init.get(), init.get()]);
    finish('app');

    expect(await both).toEqual(['app', 'app']);
    expect(attempts).toBe(1);
  });

  it('turns a synchronous throw of the initialiser into a rejection, and still retries', async () => {
    let attempts = 0;
    const init = new ColdStart<string>(() => {
      if (attempts++ === 0) throw new Error('bad environment');
      return Promise.resolve('app');
    });

    await expect(init.get()).rejects.toThrow('bad environment');
    expect(await init.get()).toBe('app');
  });

  it('reports a failed start to its callback, and an invocation after it starts afresh', async () => {
    const reported: unknown[] = [];
    let attempts = 0;
    const init = new ColdStart(async () => {
      if (attempts++ === 0) throw new Error('network');
      return 'app';
    }).start((error) => reported.push(error));
    await new Promise((resolve) => setImmediate(resolve));

    expect(await init.get()).toBe('app');
    expect(reported).toEqual([new Error('network')]);
  });
});

import { mkdir } from 'node:fs/promises';
import { assertCacheRule, assertNoNesting } from '../../registry/cache-rules.ts';
import type { CacheRule, CacheRuleStore } from '../../registry/ports.ts';
import { readFileIfExists, writeFileAtomic } from './atomic-file.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import type { FsKeys } from './keys.ts';

/**
 * Cache rules in one JSON file of mode 0600 (it holds upstream credentials), rewritten whole and atomically. Writers
 * are serialised within the process; `ocireg cache add` from another process is one short read-modify-write, and
 * `ocireg serve` only reads the file (at most every few seconds: lib/registry/pull-through-cache.ts
 * `CACHE_RULES_TTL_MS`, so a rule added while serving applies within seconds).
 */
export class FsCacheRuleStore implements CacheRuleStore {
  readonly #keys: FsKeys;
  readonly #mutex = new KeyedMutex();

  constructor(keys: FsKeys) {
    this.#keys = keys;
  }

  async put(rule: CacheRule): Promise<void> {
    assertCacheRule(rule);
    await this.#mutex.run('rules', async () => {
      const rules = await this.#read();
      assertNoNesting(rule, rules);
      await this.#write([...rules.filter((other) => other.prefix !== rule.prefix), rule]);
    });
  }

  async list(): Promise<CacheRule[]> {
    return (await this.#read()).sort((a, b) => (a.prefix < b.prefix ? -1 : 1));
  }

  async remove(prefix: string): Promise<boolean> {
    return this.#mutex.run('rules', async () => {
      const rules = await this.#read();
      const kept = rules.filter((rule) => rule.prefix !== prefix);
      if (kept.length === rules.length) return false;
      await this.#write(kept);
      return true;
    });
  }

  async #read(): Promise<CacheRule[]> {
    const text = await readFileIfExists(this.#keys.cacheRules);
    return text === undefined ? [] : ((JSON.parse(text) as { rules: CacheRule[] }).rules ?? []);
  }

  async #write(rules: CacheRule[]): Promise<void> {
    await mkdir(this.#keys.tmpDir, { recursive: true });
    await writeFileAtomic(this.#keys.tmpDir, this.#keys.cacheRules, JSON.stringify({ rules }, null, 2), 0o600);
  }
}

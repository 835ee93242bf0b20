import { assertCacheRule, assertNoNesting } from '../../registry/cache-rules.ts';
import type { CacheRule, CacheRuleStore } from '../../registry/ports.ts';

/** Cache rules in a Map: the reference for the contract suite. */
export class MemoryCacheRuleStore implements CacheRuleStore {
  readonly #rules = new Map<string, CacheRule>();

  async put(rule: CacheRule): Promise<void> {
    assertCacheRule(rule);
    assertNoNesting(rule, [...this.#rules.values()]);
    this.#rules.set(rule.prefix, structuredClone(rule));
  }

  async list(): Promise<CacheRule[]> {
    return [...this.#rules.values()].sort((a, b) => (a.prefix < b.prefix ? -1 : 1)).map((rule) => structuredClone(rule));
  }

  async remove(prefix: string): Promise<boolean> {
    return this.#rules.delete(prefix);
  }
}

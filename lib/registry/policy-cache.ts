import { BriefCache } from './brief-cache.ts';
import { policyFor, type RepositoryPolicy } from './policy.ts';
import type { PolicyStore } from './ports.ts';

/** How long a read list of policies is used before it is read again: how soon `ocireg policy set` takes effect. */
export const POLICY_CACHE_MS = 5_000;

/**
 * The policies as the request path sees them: the store's list, re-read at most every {@link POLICY_CACHE_MS}, so a
 * push costs no extra read most of the time and a change made by `ocireg policy` (another process, or on AWS another
 * function instance) applies within seconds, without a restart. Concurrent callers share one read.
 */
export class PolicyCache {
  readonly #policies: BriefCache<RepositoryPolicy[]>;

  constructor(store: PolicyStore, ttlMs = POLICY_CACHE_MS) {
    this.#policies = new BriefCache(() => store.listPolicies(), ttlMs);
  }

  /** The policy that applies to repository `name`, or undefined. */
  async policyFor(name: string): Promise<RepositoryPolicy | undefined> {
    return policyFor(await this.policies(), name);
  }

  async policies(): Promise<RepositoryPolicy[]> {
    return this.#policies.get();
  }
}

import type { RepositoryPolicy } from '../../registry/policy.ts';
import type { PolicyStore } from '../../registry/ports.ts';

/** Policies in memory: the fake for core tests. */
export class MemoryPolicyStore implements PolicyStore {
  readonly #policies = new Map<string, RepositoryPolicy>();

  async listPolicies(): Promise<RepositoryPolicy[]> {
    return [...this.#policies.values()].map((policy) => structuredClone(policy));
  }
  async putPolicy(policy: RepositoryPolicy): Promise<void> {
    this.#policies.set(policy.glob, structuredClone(policy));
  }
  async deletePolicy(glob: string): Promise<boolean> {
    return this.#policies.delete(glob);
  }
}

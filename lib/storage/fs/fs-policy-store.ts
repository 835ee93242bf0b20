import { mkdir } from 'node:fs/promises';
import type { RepositoryPolicy } from '../../registry/policy.ts';
import type { PolicyStore } from '../../registry/ports.ts';
import { readFileIfExists, writeFileAtomic } from './atomic-file.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import type { FsKeys } from './keys.ts';

/**
 * Policies in `<data-dir>/policies.json`, keyed by glob, replaced atomically. `ocireg policy` writes it from another
 * process while `ocireg serve` runs: a reader sees the old file or the new one, never a mix. Two `ocireg policy`
 * runs at the same moment may lose one change (last writer wins; the lock is per process), as for identities.
 */
export class FsPolicyStore implements PolicyStore {
  readonly #keys: FsKeys;
  readonly #mutex = new KeyedMutex();

  constructor(keys: FsKeys) {
    this.#keys = keys;
  }

  async listPolicies(): Promise<RepositoryPolicy[]> {
    return Object.values(await this.#read());
  }

  async putPolicy(policy: RepositoryPolicy): Promise<void> {
    await this.#edit((policies) => {
      policies[policy.glob] = policy;
    });
  }

  async deletePolicy(glob: string): Promise<boolean> {
    return this.#edit((policies) => {
      if (!(glob in policies)) return false;
      delete policies[glob];
      return true;
    });
  }

  async #read(): Promise<Record<string, RepositoryPolicy>> {
    const text = await readFileIfExists(this.#keys.policies);
    return text === undefined ? {} : (JSON.parse(text) as Record<string, RepositoryPolicy>);
  }

  async #edit<T>(change: (policies: Record<string, RepositoryPolicy>) => T): Promise<T> {
    return this.#mutex.run('policies', async () => {
      const policies = await this.#read();
      const result = change(policies);
      // `ocireg policy` may run before the first `ocireg serve` created the data dir.
      await mkdir(this.#keys.tmpDir, { recursive: true });
      await writeFileAtomic(this.#keys.tmpDir, this.#keys.policies, JSON.stringify(policies, null, 2));
      return result;
    });
  }
}

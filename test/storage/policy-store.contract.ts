import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { RepositoryPolicy } from '../../lib/registry/policy.ts';
import { TagFixedConflict, type MetadataStore, type PolicyStore } from '../../lib/registry/ports.ts';
import { storedManifest } from './metadata-store.contract.ts';

const unique = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;

function policy(glob: string, fields: Partial<RepositoryPolicy> = {}): RepositoryPolicy {
  return { glob, protect: [], immutable: false, mutableTags: [], updatedAt: 1, ...fields };
}

/** The contract every PolicyStore passes (memory, fs, DynamoDB). Globs are unique per test: a store may be shared. */
export function policyStoreContract(backend: string, makeStore: () => Promise<PolicyStore>): void {
  describe(`PolicyStore contract: ${backend}`, () => {
    it('stores a policy with every field and lists it', async () => {
      const store = await makeStore();
      const written = policy(`${unique('team')}/*`, {
        keepLast: 5,
        expireAfterMs: 7 * 86_400_000,
        expireUnpulledMs: 30 * 86_400_000,
        expireUntaggedMs: 86_400_000,
        protect: ['v*', 'prod-*'],
        immutable: true,
        mutableTags: ['latest', 'dev-*'],
        quotaBytes: 10 * 2 ** 30,
        updatedAt: 42,
      });
      await store.putPolicy(written);
      expect((await store.listPolicies()).find((found) => found.glob === written.glob)).toEqual(written);
    });

    it('replaces a policy whole: fields left out of the new one are gone', async () => {
      const store = await makeStore();
      const glob = unique('app');
      await store.putPolicy(policy(glob, { keepLast: 3, quotaBytes: 1000 }));
      await store.putPolicy(policy(glob, { immutable: true }));
      const found = (await store.listPolicies()).filter((listed) => listed.glob === glob);
      expect(found).toEqual([policy(glob, { immutable: true })]);
    });

    it('deletes a policy once', async () => {
      const store = await makeStore();
      const [kept, removed] = [unique('kept'), unique('removed')];
      await store.putPolicy(policy(kept));
      await store.putPolicy(policy(removed));
      expect(await store.deletePolicy(removed)).toBe(true);
      expect(await store.deletePolicy(removed)).toBe(false);
      const globs = (await store.listPolicies()).map((listed) => listed.glob);
      expect(globs).toContain(kept);
      expect(globs).not.toContain(removed);
    });
  });
}

/** What MetadataStore.putManifest promises for fixed (immutable) tags, on every backend. */
export function fixedTagsContract(backend: string, makeStore: () => Promise<MetadataStore>): void {
  const repo = () => unique('fixed');

  describe(`MetadataStore fixed tags: ${backend}`, () => {
    it('sets an absent fixed tag, and again to the same digest', async () => {
      const store = await makeStore();
      const name = repo();
      const manifest = storedManifest();
      await store.putManifest(name, manifest, ['v1'], { fixedTags: ['v1'] });
      await store.putManifest(name, manifest, ['v1'], { fixedTags: ['v1'] });
      expect((await store.resolveTag(name, 'v1'))?.digest).toBe(manifest.digest);
    });

    it('refuses to move a fixed tag, naming the digest it keeps', async () => {
      const store = await makeStore();
      const name = repo();
      const [first, second] = [storedManifest(), storedManifest()];
      await store.putManifest(name, first, ['v1']);
      const error = await store.putManifest(name, second, ['v1'], { fixedTags: ['v1'] }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(TagFixedConflict);
      expect(error).toMatchObject({ tag: 'v1', current: first.digest });
      expect((await store.resolveTag(name, 'v1'))?.digest).toBe(first.digest);
    });

    it('moves a tag that is not fixed', async () => {
      const store = await makeStore();
      const name = repo();
      const [first, second] = [storedManifest(), storedManifest()];
      await store.putManifest(name, first, ['latest'], { fixedTags: [] });
      await store.putManifest(name, second, ['latest']);
      expect((await store.resolveTag(name, 'latest'))?.digest).toBe(second.digest);
    });

    it('lets exactly one of concurrent pushes of different digests to one fixed tag win', async () => {
      const store = await makeStore();
      const name = repo();
      const manifests = Array.from({ length: 6 }, () => storedManifest());
      const results = await Promise.allSettled(manifests.map((manifest) => store.putManifest(name, manifest, ['release'], { fixedTags: ['release'] })));
      const won = results.flatMap((result, index) => (result.status === 'fulfilled' ? [manifests[index]!.digest] : []));
      expect(won).toHaveLength(1);
      for (const result of results) if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(TagFixedConflict);
      expect((await store.resolveTag(name, 'release'))?.digest).toBe(won[0]);
    });
  });
}

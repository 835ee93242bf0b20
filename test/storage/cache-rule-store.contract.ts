import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isOciError } from '../../lib/registry/errors.ts';
import type { CacheRule, CacheRuleStore } from '../../lib/registry/ports.ts';

const unique = (label: string) => `${label}${randomBytes(4).toString('hex')}`;

/**
 * Where a listed rule's credentials are: inline (memory, fs), or in the secret it names (DynamoDB: Secrets Manager).
 * Rejects when the secret cannot be read.
 */
export type CredentialsOf = (rule: CacheRule) => Promise<CacheRule['credentials']>;

const inline: CredentialsOf = async (rule) => rule.credentials;

/**
 * The contract every CacheRuleStore passes (memory, fs, DynamoDB Local with the local Secrets Manager). Prefixes are
 * unique per test: a store may be shared.
 */
export function cacheRuleStoreContract(backend: string, makeStore: () => Promise<CacheRuleStore>, credentialsOf: CredentialsOf = inline): void {
  describe(`CacheRuleStore contract: ${backend}`, () => {
    it('stores a rule with credentials, lists it, replaces it and removes it once', async () => {
      // Prepare
      const store = await makeStore();
      const prefix = unique('hub');
      const rule = { prefix, upstream: 'https://registry-1.docker.io', credentials: { username: 'u', password: 'p' } };

      // Act
      await store.put(rule);
      const listed = (await store.list()).find((r) => r.prefix === prefix)!;
      const listedCredentials = await credentialsOf(listed);
      await store.put({ ...rule, credentials: { username: 'u2', password: 'p2' } });
      const changed = await credentialsOf((await store.list()).find((r) => r.prefix === prefix)!);
      await store.put({ prefix, upstream: 'http://127.0.0.1:5001' });
      const replaced = (await store.list()).filter((r) => r.prefix === prefix);
      const removed = await store.remove(prefix);
      const again = await store.remove(prefix);

      // Assess
      expect({ prefix: listed.prefix, upstream: listed.upstream, credentials: listedCredentials }).toEqual(rule);
      expect(changed).toEqual({ username: 'u2', password: 'p2' });
      expect(replaced).toEqual([{ prefix, upstream: 'http://127.0.0.1:5001' }]);
      expect([removed, again]).toEqual([true, false]);
      expect((await store.list()).some((r) => r.prefix === prefix)).toBe(false);
    });

    it('takes a removed prefix again with new credentials', async () => {
      const store = await makeStore();
      const prefix = unique('gone');
      await store.put({ prefix, upstream: 'https://example.test', credentials: { username: 'old', password: 'old-secret' } });

      await store.remove(prefix);
      await store.put({ prefix, upstream: 'https://example.test', credentials: { username: 'new', password: 'new-secret' } });
      const after = await credentialsOf((await store.list()).find((r) => r.prefix === prefix)!);

      expect(after).toEqual({ username: 'new', password: 'new-secret' });
    });

    it('lists rules in lexical order of prefix', async () => {
      const store = await makeStore();
      const base = unique('o');
      for (const suffix of ['c', 'a', 'b']) await store.put({ prefix: `${base}${suffix}`, upstream: 'https://example.test' });
      const mine = (await store.list()).map((r) => r.prefix).filter((p) => p.startsWith(base));
      expect(mine).toEqual([`${base}a`, `${base}b`, `${base}c`]);
    });

    it('refuses a prefix that nests with another rule, either way, with UNSUPPORTED', async () => {
      const store = await makeStore();
      const prefix = unique('n');
      await store.put({ prefix: `${prefix}/mid`, upstream: 'https://example.test' });
      await expect(store.put({ prefix, upstream: 'https://example.test' })).rejects.toSatisfy((e) => isOciError(e, 'UNSUPPORTED'));
      await expect(store.put({ prefix: `${prefix}/mid/low`, upstream: 'https://example.test' })).rejects.toSatisfy((e) => isOciError(e, 'UNSUPPORTED'));
      expect((await store.list()).filter((r) => r.prefix.startsWith(prefix)).map((r) => r.prefix)).toEqual([`${prefix}/mid`]);
    });

    it('refuses an invalid prefix or an upstream that is not a base URL', async () => {
      const store = await makeStore();
      for (const rule of [
        { prefix: 'Hub', upstream: 'https://example.test' },
        { prefix: unique('p'), upstream: 'registry-1.docker.io' },
        { prefix: unique('p'), upstream: 'https://example.test/v2/' },
        { prefix: unique('p'), upstream: 'ftp://example.test' },
      ]) {
        await expect(store.put(rule), JSON.stringify(rule)).rejects.toSatisfy((e) => isOciError(e, 'UNSUPPORTED'));
      }
    });
  });
}

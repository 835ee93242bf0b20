import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { digestOf } from '../../lib/registry/digest.ts';
import { retainedDigests, type TagChange, type TagHistoryStore } from '../../lib/registry/tag-history.ts';

const digest = () => digestOf(randomBytes(16));

function moved(tag: string, previous: string | undefined, next: string, at = new Date()): TagChange {
  const change: TagChange = { tag, at: at.toISOString(), action: previous === undefined ? 'created' : 'moved', digest: next, actor: { subject: 'alice', tokenId: 't1' }, userAgent: 'docker/27' };
  if (previous !== undefined) change.previous = previous;
  return change;
}

/** The contract every TagHistoryStore passes (memory, fs, DynamoDB). `makeStore(depth)` keeps `depth` changes per tag. */
export function tagHistoryStoreContract(backend: string, makeStore: (depth: number) => Promise<TagHistoryStore>): void {
  let counter = 0;
  const repo = (label: string) => `history-${Date.now().toString(36)}-${counter++}/${label}`;

  describe(`TagHistoryStore contract: ${backend}`, () => {
    it('returns a tag’s changes newest first, with who, when and the client, and nothing for another tag', async () => {
      // Prepare
      const store = await makeStore(10);
      const name = repo('order');
      const [d1, d2] = [digest(), digest()];
      // Act
      await store.append(name, [moved('v1', undefined, d1)]);
      await store.append(name, [moved('v1', d1, d2)]);
      // Assess
      const changes = await store.list(name, 'v1');
      expect(changes.map((change) => [change.action, change.previous, change.digest])).toEqual([
        ['moved', d1, d2],
        ['created', undefined, d1],
      ]);
      expect(changes[0]).toMatchObject({ actor: { subject: 'alice', tokenId: 't1' }, userAgent: 'docker/27' });
      expect(await store.list(name, 'other')).toEqual([]);
    });

    it('keeps only the newest `depth` changes of each tag', async () => {
      const store = await makeStore(3);
      const name = repo('trim');
      const digests = Array.from({ length: 5 }, digest);
      for (const [index, next] of digests.entries()) await store.append(name, [moved('t', digests[index - 1], next)]);
      expect((await store.list(name, 't')).map((change) => change.digest)).toEqual([digests[4], digests[3], digests[2]]);
    });

    it('loses no change when changes of one tag arrive concurrently', async () => {
      const store = await makeStore(50);
      const name = repo('race');
      const digests = Array.from({ length: 8 }, digest);
      await Promise.all(digests.map((next) => store.append(name, [moved('t', undefined, next)])));
      expect(new Set((await store.list(name, 't')).map((change) => change.digest))).toEqual(new Set(digests));
    });

    it('lists every tag of a repository with history, and names the digests retention must keep', async () => {
      const store = await makeStore(2);
      const name = repo('all');
      const [a1, a2, a3, b1] = [digest(), digest(), digest(), digest()];
      await store.append(name, [moved('a', undefined, a1), moved('b', undefined, b1)]);
      await store.append(name, [moved('a', a1, a2)]);
      await store.append(name, [moved('a', a2, a3)]);
      const all = await store.listRepository(name);
      expect([...all.keys()].sort()).toEqual(['a', 'b']);
      expect(all.get('a')!.map((change) => change.digest)).toEqual([a3, a2]);
      // a1 is still the `previous` of a kept change: a rollback two steps back needs it.
      expect(await retainedDigests(store, name)).toEqual(new Set([a3, a2, a1, b1]));
      expect((await store.listRepository(repo('none'))).size).toBe(0);
    });
  });
}

import { describe, expect, it } from 'vitest';
import { digestOf } from '../../lib/registry/digest.ts';
import { TagFixedConflict, type MetadataStore } from '../../lib/registry/ports.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { retainedDigests, type HistoryWrite, type TagHistoryStore } from '../../lib/registry/tag-history.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { storedManifest } from './metadata-store.contract.ts';

export interface HistoryStores {
  metadata: MetadataStore;
  history: TagHistoryStore;
}

/** What one write records: `depth` changes kept, by alice's token t1 through docker. */
function recorded(depth: number, at = new Date()): HistoryWrite {
  return { depth, stamp: { at: at.toISOString(), actor: { subject: 'alice', tokenId: 't1' }, userAgent: 'docker/27' } };
}

const INDEX = 'application/vnd.oci.image.index.v1+json';
const indexBody = (n: number) => JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [], annotations: { n: String(n), nonce: String(Math.random()) } });
const bytes = (text: string) =>
  (async function* () {
    yield new TextEncoder().encode(text);
  })();

/**
 * The contract of the tag history on every backend (memory, fs, DynamoDB): the metadata store writes each tag's
 * change in the tag's own write (`options.history`), the history store reads it back. `makeStores(depth)` gives a
 * metadata store and the history store over the same storage, keeping `depth` changes per tag.
 */
export function tagHistoryStoreContract(backend: string, makeStores: (depth: number) => Promise<HistoryStores>): void {
  let counter = 0;
  const repo = (label: string) => `history-${Date.now().toString(36)}-${counter++}/${label}`;

  describe(`tag history written with the tags: ${backend}`, () => {
    it('returns a tag’s changes newest first, with who, when and the client, and nothing for another tag', async () => {
      // Prepare
      const { metadata, history } = await makeStores(10);
      const name = repo('order');
      const [m1, m2] = [storedManifest(), storedManifest()];
      // Act
      await metadata.putManifest(name, m1, ['v1'], { history: recorded(10) });
      await metadata.putManifest(name, m2, ['v1'], { history: recorded(10) });
      await metadata.putManifest(name, m2, ['v1'], { history: recorded(10) });
      // Assess: the third push changed nothing, so it recorded nothing
      const changes = await history.list(name, 'v1');
      expect(changes.map((change) => [change.action, change.previous, change.digest])).toEqual([
        ['moved', m1.digest, m2.digest],
        ['created', undefined, m1.digest],
      ]);
      expect(changes[0]).toMatchObject({ actor: { subject: 'alice', tokenId: 't1' }, userAgent: 'docker/27' });
      expect(await history.list(name, 'other')).toEqual([]);
    });

    it('keeps only the newest `depth` changes of each tag', async () => {
      const { metadata, history } = await makeStores(3);
      const name = repo('trim');
      const manifests = Array.from({ length: 5 }, () => storedManifest());
      for (const manifest of manifests) await metadata.putManifest(name, manifest, ['t'], { history: recorded(3) });
      expect((await history.list(name, 't')).map((change) => change.digest)).toEqual([manifests[4]!.digest, manifests[3]!.digest, manifests[2]!.digest]);
    });

    it('chains the changes of concurrent pushes of one tag: each entry starts where the one before it ended', async () => {
      // Prepare
      const { metadata, history } = await makeStores(50);
      const name = repo('race');
      const manifests = Array.from({ length: 8 }, () => storedManifest());
      // Act
      await Promise.all(manifests.map((manifest) => metadata.putManifest(name, manifest, ['t'], { history: recorded(50) })));
      // Assess
      const changes = await history.list(name, 't');
      expect(changes).toHaveLength(8);
      expect(new Set(changes.map((change) => change.digest))).toEqual(new Set(manifests.map((manifest) => manifest.digest)));
      expect(changes[0]!.digest).toBe((await metadata.resolveTag(name, 't'))!.digest);
      for (let index = 0; index < changes.length - 1; index++) expect(changes[index]!.previous).toBe(changes[index + 1]!.digest);
      expect(changes.at(-1)).toMatchObject({ action: 'created' });
    });

    it('records a deleted tag, and each tag a manifest delete removes, in the same write; nothing for an absent tag or one elsewhere', async () => {
      // Prepare
      const { metadata, history } = await makeStores(10);
      const name = repo('deletes');
      const [kept, gone] = [storedManifest(), storedManifest()];
      await metadata.putManifest(name, kept, ['solo'], { history: recorded(10) });
      await metadata.putManifest(name, gone, ['a', 'b'], { history: recorded(10) });
      // Act
      expect(await metadata.deleteTag(name, 'solo', gone.digest, { history: recorded(10) })).toBe(false);
      expect(await metadata.deleteTag(name, 'solo', kept.digest, { history: recorded(10) })).toBe(true);
      expect(await metadata.deleteTag(name, 'never', undefined, { history: recorded(10) })).toBe(false);
      expect(await metadata.deleteManifest(name, gone.digest, { history: recorded(10) })).toBe(true);
      // Assess
      expect((await history.list(name, 'solo'))[0]).toMatchObject({ action: 'deleted', previous: kept.digest, actor: { subject: 'alice' } });
      for (const tag of ['a', 'b']) expect((await history.list(name, tag)).map((change) => change.action)).toEqual(['deleted', 'created']);
      expect(await history.list(name, 'never')).toEqual([]);
      expect(await metadata.resolveTag(name, 'a')).toBeUndefined();
    });

    it('writes neither the tag nor its change when the write is refused (an immutable tag held elsewhere)', async () => {
      const { metadata, history } = await makeStores(10);
      const name = repo('refused');
      const [first, second] = [storedManifest(), storedManifest()];
      await metadata.putManifest(name, first, ['v1'], { fixedTags: ['v1'], history: recorded(10) });
      const error = await metadata.putManifest(name, second, ['v1', 'other'], { fixedTags: ['v1'], history: recorded(10) }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(TagFixedConflict);
      expect((await metadata.resolveTag(name, 'v1'))!.digest).toBe(first.digest);
      expect((await history.list(name, 'v1')).map((change) => change.digest)).toEqual([first.digest]);
    });

    it('records more tags than one DynamoDB transaction holds with the manifest (60 tags, 2 actions each)', async () => {
      const { metadata, history } = await makeStores(10);
      const name = repo('many');
      const tags = Array.from({ length: 60 }, (_, index) => `t${index}`);
      const [first, second] = [storedManifest(), storedManifest()];
      await metadata.putManifest(name, first, tags, { history: recorded(10) });
      await metadata.putManifest(name, second, tags, { history: recorded(10) });
      const all = await history.listRepository(name);
      expect(all.size).toBe(60);
      for (const tag of tags) expect(all.get(tag)!.map((change) => [change.previous, change.digest])).toEqual([[first.digest, second.digest], [undefined, first.digest]]);
      expect(await metadata.deleteManifest(name, second.digest, { history: recorded(10) })).toBe(true);
      const after = await history.listRepository(name);
      for (const tag of tags) expect(after.get(tag)![0]).toMatchObject({ action: 'deleted', previous: second.digest });
    });

    it('lists every tag of a repository with history, and names the digests retention must keep', async () => {
      const { metadata, history } = await makeStores(2);
      const name = repo('all');
      const [a1, a2, a3, b1] = [storedManifest(), storedManifest(), storedManifest(), storedManifest()];
      await metadata.putManifest(name, a1, ['a'], { history: recorded(2) });
      await metadata.putManifest(name, b1, ['b'], { history: recorded(2) });
      await metadata.putManifest(name, a2, ['a'], { history: recorded(2) });
      await metadata.putManifest(name, a3, ['a'], { history: recorded(2) });
      const all = await history.listRepository(name);
      expect([...all.keys()].sort()).toEqual(['a', 'b']);
      expect(all.get('a')!.map((change) => change.digest)).toEqual([a3.digest, a2.digest]);
      // a1 is still the `previous` of a kept change: a rollback two steps back needs it.
      expect(await retainedDigests(history, name)).toEqual(new Set([a3.digest, a2.digest, a1.digest, b1.digest]));
      expect((await history.listRepository(repo('none'))).size).toBe(0);
    });

    it('appends a change another write already committed (garbage collection’s report) after the recorded ones', async () => {
      const { metadata, history } = await makeStores(10);
      const name = repo('append');
      const manifest = storedManifest();
      await metadata.putManifest(name, manifest, ['t'], { history: recorded(10) });
      await metadata.deleteTag(name, 't');
      await history.append(name, [{ tag: 't', at: new Date().toISOString(), action: 'deleted', previous: manifest.digest, actor: { subject: 'gc' }, reason: 'removed by retention: expired' }]);
      expect((await history.list(name, 't')).map((change) => [change.action, change.actor.subject, change.reason])).toEqual([
        ['deleted', 'gc', 'removed by retention: expired'],
        ['created', 'alice', undefined],
      ]);
    });

    it('rolls back N steps after many moves through the registry, each rollback recorded', async () => {
      // Prepare: 12 pushes of one tag, 10 kept
      const stores = await makeStores(10);
      const registry = new Registry({ blobs: new MemoryBlobStore(), ...stores });
      const name = repo('rollback');
      const digests: string[] = [];
      for (let n = 0; n < 12; n++) {
        const body = indexBody(n);
        await registry.putManifest(name, 'app', bytes(body), INDEX);
        digests.push(digestOf(new TextEncoder().encode(body)));
      }
      // Act
      const five = await registry.versions.rollback(name, 'app', { steps: 5 });
      const back = await registry.versions.rollback(name, 'app', { steps: 1 });
      const ten = await registry.versions.rollback(name, 'app', { steps: 10 });
      // Assess
      expect(five).toEqual({ previous: digests[11], digest: digests[6] });
      expect(back).toEqual({ previous: digests[6], digest: digests[11] });
      // The newest 10 changes are now: 2 rollbacks and the pushes of digests[11] … digests[4]; 10 back is digests[3].
      expect(ten).toEqual({ previous: digests[11], digest: digests[3] });
      expect((await registry.getManifest(name, 'app')).digest).toBe(digests[3]);
    });
  });
}

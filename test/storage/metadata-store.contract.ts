import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { digestOf } from '../../lib/registry/digest.ts';
import { isOciError } from '../../lib/registry/errors.ts';
import type { MetadataStore } from '../../lib/registry/ports.ts';
import type { BlobRecord, StoredManifest, UploadSession } from '../../lib/registry/types.ts';

/** A manifest record with real digest; `extra` lands in its JSON so two manifests differ. */
export function storedManifest(extra: Record<string, unknown> = {}, fields: Partial<StoredManifest> = {}): StoredManifest {
  const content = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, nonce: randomBytes(8).toString('hex'), ...extra }));
  return { digest: digestOf(content), mediaType: 'application/vnd.oci.image.manifest.v1+json', content, ...fields };
}

function blobRecord(size = 10): BlobRecord {
  const digest = digestOf(randomBytes(16));
  return { digest, size, location: `loc/${digest}` };
}

/** Records the blob globally, then links it: linkBlob refuses a record that does not exist. */
async function linkCommitted(store: MetadataStore, name: string, record: BlobRecord): Promise<boolean> {
  await store.putBlob(record);
  return store.linkBlob(name, record);
}

function session(name: string, fields: Partial<UploadSession> = {}): UploadSession {
  return { name, uploadId: `u-${randomBytes(6).toString('hex')}`, offset: 0, version: 0, createdAt: Date.now(), storage: { any: ['json', 1] }, ...fields };
}

/**
 * The contract every MetadataStore passes (memory, fs, DynamoDB). Each test uses its own repository names,
 * so one store instance may be shared by the whole suite.
 */
export function metadataStoreContract(backend: string, makeStore: () => Promise<MetadataStore>): void {
  let counter = 0;
  const repo = (label: string) => `contract-${Date.now().toString(36)}-${counter++}/${label}`;

  describe(`MetadataStore contract: ${backend}`, () => {
    it('keeps the first record of a blob and returns it to a second writer', async () => {
      const store = await makeStore();
      const first = blobRecord();
      expect(await store.getBlob(first.digest)).toBeUndefined();
      expect(await store.putBlob(first)).toEqual(first);
      const second = { ...first, location: 'elsewhere' };
      expect(await store.putBlob(second)).toEqual(first);
      expect(await store.getBlob(first.digest)).toEqual(first);
    });

    it('links, reads and unlinks a blob per repository', async () => {
      const store = await makeStore();
      const [a, b] = [repo('a'), repo('b')];
      const record = blobRecord(1234);
      expect(await store.linkBlob(a, record)).toBe(false);
      expect(await linkCommitted(store, a, record)).toBe(true);
      expect(await store.getLinkedBlob(a, record.digest)).toEqual(record);
      expect(await store.linkBlob(b, { ...record, location: 'elsewhere' })).toBe(false);
      expect(await store.getLinkedBlob(b, record.digest)).toBeUndefined();
      await linkCommitted(store, a, record);
      expect(await store.unlinkBlob(a, record.digest)).toBe(true);
      expect(await store.unlinkBlob(a, record.digest)).toBe(false);
      expect(await store.getLinkedBlob(a, record.digest)).toBeUndefined();
    });

    it('names the references of a manifest that the repository lacks, once each, in the order given', async () => {
      // Prepare
      const store = await makeStore();
      const [name, other] = [repo('refs'), repo('refs-other')];
      const [linked, unlinked, elsewhere] = [blobRecord(), blobRecord(), blobRecord()];
      const [child, absentChild] = [storedManifest(), storedManifest()];
      await linkCommitted(store, name, linked);
      await linkCommitted(store, other, elsewhere);
      await store.putBlob(unlinked);
      await store.putManifest(name, child, []);
      // Act
      const missing = await store.missingReferences(name, {
        blobs: [linked.digest, unlinked.digest, elsewhere.digest, unlinked.digest],
        manifests: [child.digest, absentChild.digest, linked.digest],
      });
      // Assess
      expect(missing).toEqual([unlinked.digest, elsewhere.digest, absentChild.digest, linked.digest]);
      expect(await store.missingReferences(name, { blobs: [linked.digest], manifests: [child.digest] })).toEqual([]);
      expect(await store.missingReferences(name, { blobs: [], manifests: [] })).toEqual([]);
    });

    it('checks more references than one DynamoDB batch holds (100 keys)', async () => {
      const store = await makeStore();
      const name = repo('many-refs');
      const records = Array.from({ length: 230 }, () => blobRecord());
      await Promise.all(records.map((record, index) => (index === 150 ? undefined : linkCommitted(store, name, record))));
      const missing = await store.missingReferences(name, { blobs: records.map((record) => record.digest), manifests: [] });
      expect(missing).toEqual([records[150]!.digest]);
    });

    it('stores a manifest by digest and by tag, with its exact bytes', async () => {
      const store = await makeStore();
      const name = repo('m');
      const manifest = storedManifest({}, { annotations: { 'org.example': 'x' } });
      await store.putManifest(name, manifest, ['v1', 'latest']);
      const byDigest = await store.getManifest(name, manifest.digest);
      expect(byDigest?.digest).toBe(manifest.digest);
      expect(byDigest?.mediaType).toBe(manifest.mediaType);
      expect(Buffer.from(byDigest!.content)).toEqual(Buffer.from(manifest.content));
      const byTag = await store.resolveTag(name, 'latest');
      expect(byTag?.digest).toBe(manifest.digest);
      expect(Buffer.from(byTag!.content)).toEqual(Buffer.from(manifest.content));
      expect(await store.resolveTag(name, 'nope')).toBeUndefined();
      expect(await store.getManifest(repo('other'), manifest.digest)).toBeUndefined();
    });

    it('moves a tag to the newest manifest pushed under it', async () => {
      const store = await makeStore();
      const name = repo('move');
      const [one, two] = [storedManifest(), storedManifest()];
      await store.putManifest(name, one, ['t']);
      await store.putManifest(name, two, ['t']);
      expect((await store.resolveTag(name, 't'))?.digest).toBe(two.digest);
      expect((await store.getManifest(name, one.digest))?.digest).toBe(one.digest);
    });

    it('ends with one of the manifests when the same tag is pushed concurrently', async () => {
      const store = await makeStore();
      const name = repo('race');
      const manifests = Array.from({ length: 6 }, () => storedManifest());
      await Promise.all(manifests.map((manifest) => store.putManifest(name, manifest, ['same'])));
      const winner = await store.resolveTag(name, 'same');
      expect(manifests.map((m) => m.digest)).toContain(winner?.digest);
      const tags = await store.listTags(name, {});
      expect(tags?.items).toEqual(['same']);
    });

    it('deletes a tag without deleting its manifest', async () => {
      const store = await makeStore();
      const name = repo('untag');
      const manifest = storedManifest();
      await store.putManifest(name, manifest, ['a', 'b']);
      expect(await store.deleteTag(name, 'a')).toBe(true);
      expect(await store.deleteTag(name, 'a')).toBe(false);
      expect(await store.resolveTag(name, 'a')).toBeUndefined();
      expect((await store.resolveTag(name, 'b'))?.digest).toBe(manifest.digest);
      expect(await store.getManifest(name, manifest.digest)).toBeDefined();
    });

    it('deletes a tag by its digest only while it points there', async () => {
      const store = await makeStore();
      const name = repo('untag-if');
      const [first, second] = [storedManifest(), storedManifest()];
      await store.putManifest(name, first, ['t']);
      await store.putManifest(name, second, ['t']);
      expect(await store.deleteTag(name, 't', first.digest)).toBe(false);
      expect((await store.resolveTag(name, 't'))?.digest).toBe(second.digest);
      expect(await store.deleteTag(name, 't', second.digest)).toBe(true);
      expect(await store.resolveTag(name, 't')).toBeUndefined();
      expect(await store.deleteTag(name, 't', second.digest)).toBe(false);
    });

    it('deletes a manifest with the tags that point at it and its referrers entry', async () => {
      const store = await makeStore();
      const name = repo('del');
      const subject = storedManifest();
      const referrer = storedManifest({}, { subject: subject.digest, artifactType: 'application/x-sig' });
      const keep = storedManifest();
      await store.putManifest(name, subject, []);
      await store.putManifest(name, referrer, ['sig', 'sig2']);
      await store.putManifest(name, keep, ['keep']);
      expect(await store.deleteManifest(name, referrer.digest)).toBe(true);
      expect(await store.deleteManifest(name, referrer.digest)).toBe(false);
      expect(await store.getManifest(name, referrer.digest)).toBeUndefined();
      expect(await store.resolveTag(name, 'sig')).toBeUndefined();
      expect((await store.listTags(name, {}))?.items).toEqual(['keep']);
      expect(await store.listReferrers(name, subject.digest)).toEqual([]);
    });

    it('lists tags in lexical order with n/last pagination', async () => {
      const store = await makeStore();
      const name = repo('tags');
      const tags = ['b', 'a', 'c2', 'c10', 'Z', '1.0', 'latest'];
      const manifest = storedManifest();
      await store.putManifest(name, manifest, tags);
      const sorted = [...tags].sort();
      expect(await store.listTags(name, {})).toEqual({ items: sorted, hasMore: false });
      expect(await store.listTags(name, { limit: 3 })).toEqual({ items: sorted.slice(0, 3), hasMore: true });
      expect(await store.listTags(name, { limit: 3, last: sorted[2] })).toEqual({ items: sorted.slice(3, 6), hasMore: true });
      expect(await store.listTags(name, { limit: 3, last: sorted[5] })).toEqual({ items: sorted.slice(6), hasMore: false });
      expect(await store.listTags(name, { last: 'b' })).toEqual({ items: sorted.filter((t) => t > 'b'), hasMore: false });
    });

    it('answers undefined for the tags of an unknown repository and [] for a repository without tags', async () => {
      const store = await makeStore();
      expect(await store.listTags(repo('none'), {})).toBeUndefined();
      const name = repo('untagged');
      await store.putManifest(name, storedManifest(), []);
      expect(await store.listTags(name, {})).toEqual({ items: [], hasMore: false });
    });

    it('lists repositories holding manifests, paginated', async () => {
      const store = await makeStore();
      const prefix = repo('cat');
      const names = [`${prefix}/x`, `${prefix}/a`, `${prefix}/m/deep`];
      for (const name of names) await store.putManifest(name, storedManifest(), ['t']);
      await linkCommitted(store, `${prefix}/blobs-only`, blobRecord());
      const all: string[] = [];
      let last: string | undefined;
      for (;;) {
        const page = await store.listRepositories(last === undefined ? { limit: 2 } : { limit: 2, last });
        all.push(...page.items);
        expect(page.items.length).toBeLessThanOrEqual(2);
        if (!page.hasMore) break;
        last = page.items.at(-1);
      }
      const mine = all.filter((name) => name.startsWith(prefix));
      expect(mine).toEqual([...names].sort());
      expect([...all].sort()).toEqual(all);
    });

    it('indexes referrers by subject with their artifact type and annotations', async () => {
      const store = await makeStore();
      const name = repo('refs');
      const subject = storedManifest();
      const sbom = storedManifest({}, { subject: subject.digest, artifactType: 'application/spdx+json', annotations: { a: 'b' } });
      const sig = storedManifest({}, { subject: subject.digest, artifactType: 'application/x-sig' });
      await store.putManifest(name, sbom, []);
      await store.putManifest(name, sig, []);
      const referrers = await store.listReferrers(name, subject.digest);
      expect(referrers).toHaveLength(2);
      expect(referrers).toContainEqual({ mediaType: sbom.mediaType, digest: sbom.digest, size: sbom.content.byteLength, artifactType: 'application/spdx+json', annotations: { a: 'b' } });
      expect(referrers).toContainEqual({ mediaType: sig.mediaType, digest: sig.digest, size: sig.content.byteLength, artifactType: 'application/x-sig' });
      expect(await store.listReferrers(repo('elsewhere'), subject.digest)).toEqual([]);
    });

    it('stores a manifest close to the 4 MiB limit intact', async () => {
      const store = await makeStore();
      const name = repo('big');
      const manifest = storedManifest({ padding: randomBytes(1_500_000).toString('base64') });
      await store.putManifest(name, manifest, ['big']);
      const back = await store.resolveTag(name, 'big');
      expect(back?.content.byteLength).toBe(manifest.content.byteLength);
      expect(digestOf(back!.content)).toBe(manifest.digest);
    });

    it('creates, reads, updates by compare-and-set and deletes upload sessions', async () => {
      const store = await makeStore();
      const name = repo('up');
      const created = session(name);
      await store.createUpload(created);
      expect(await store.getUpload(name, created.uploadId)).toEqual(created);
      expect(await store.getUpload(repo('other'), created.uploadId)).toBeUndefined();
      const next = { ...created, offset: 100, version: 1, storage: { part: 2 } };
      await store.updateUpload(next);
      expect(await store.getUpload(name, created.uploadId)).toEqual(next);
      const stale = { ...created, offset: 50, version: 1 };
      const error = await store.updateUpload(stale).catch((e: unknown) => e);
      expect(isOciError(error, 'RANGE_INVALID')).toBe(true);
      expect(await store.getUpload(name, created.uploadId)).toEqual(next);
      await store.deleteUpload(name, created.uploadId);
      await store.deleteUpload(name, created.uploadId);
      expect(await store.getUpload(name, created.uploadId)).toBeUndefined();
    });

    it('lets exactly one of two concurrent updates of one upload win', async () => {
      const store = await makeStore();
      const name = repo('cas');
      const created = session(name);
      await store.createUpload(created);
      const results = await Promise.allSettled([
        store.updateUpload({ ...created, offset: 10, version: 1 }),
        store.updateUpload({ ...created, offset: 20, version: 1 }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const stored = await store.getUpload(name, created.uploadId);
      expect(stored?.version).toBe(1);
      expect([10, 20]).toContain(stored?.offset);
    });
  });
}

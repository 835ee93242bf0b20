import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { digestOf } from '../../lib/registry/digest.ts';
import type { GcEntry } from '../../lib/registry/gc/gc-entries.ts';
import type { GcStore, MetadataStore } from '../../lib/registry/ports.ts';
import type { BlobRecord } from '../../lib/registry/types.ts';
import { storedManifest } from './metadata-store.contract.ts';

function blobRecord(size = 10): BlobRecord {
  const digest = digestOf(randomBytes(16));
  return { digest, size, location: `loc/${randomUUID()}` };
}

/** A time after everything written so far, by the store's clocks: `since` for a run that began now. */
async function sinceNow(store: GcStore): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, store.clockToleranceMs + 2));
  return Date.now() - store.clockToleranceMs;
}

/**
 * The garbage-collection contract of a metadata store, step by step: each timeline step of
 * lib/registry/gc/collector.ts driven through real store calls.
 */
export function gcStoreContract(backend: string, makeStore: () => Promise<MetadataStore & GcStore>): void {
  let counter = 0;
  const repo = (label: string) => `gcstore-${Date.now().toString(36)}-${counter++}/${label}`;
  const linked = async (store: MetadataStore, name: string) => {
    const record = blobRecord();
    await store.putBlob(record);
    expect(await store.linkBlob(name, record)).toBe(true);
    return record;
  };

  describe(`GcStore contract: ${backend}`, () => {
    it('refuses a manifest that needs a doomed link, stores nothing, and the run then deletes the link', async () => {
      // Prepare
      const store = await makeStore();
      const name = repo('doomed-link');
      const record = await linked(store, name);
      const since = await sinceNow(store);
      // Act
      expect(await store.doomLink(name, record.digest, 'run-1', since)).toBe(true);
      const manifest = storedManifest();
      const refused = await store.putManifest(name, manifest, ['t'], { references: { blobs: [record.digest], manifests: [] } }).catch((error: unknown) => error);
      // Assess
      expect(refused).toMatchObject({ code: 'MANIFEST_BLOB_UNKNOWN' });
      expect(await store.getManifest(name, manifest.digest)).toBeUndefined();
      expect(await store.dropLink(name, record.digest, 'run-1')).toBe(true);
      expect(await store.getLinkedBlob(name, record.digest)).toBeUndefined();
    });

    it('does not doom a link that a manifest referenced at or after the scan began', async () => {
      const store = await makeStore();
      const name = repo('stamped-link');
      const record = await linked(store, name);
      const since = await sinceNow(store);
      await store.putManifest(name, storedManifest(), [], { references: { blobs: [record.digest], manifests: [] } });
      expect(await store.doomLink(name, record.digest, 'run-2', since)).toBe(false);
      expect(await store.dropLink(name, record.digest, 'run-2')).toBe(false);
      expect(await store.getLinkedBlob(name, record.digest)).toEqual(record);
    });

    it('lets only the run that doomed an item delete it, and dooms it once', async () => {
      const store = await makeStore();
      const name = repo('two-runs');
      const record = await linked(store, name);
      const since = await sinceNow(store);
      expect(await store.doomLink(name, record.digest, 'run-a', since)).toBe(true);
      expect(await store.doomLink(name, record.digest, 'run-b', since)).toBe(false);
      expect(await store.dropLink(name, record.digest, 'run-b')).toBe(false);
      expect(await store.getLinkedBlob(name, record.digest)).toEqual(record);
      expect(await store.dropLink(name, record.digest, 'run-a')).toBe(true);
    });

    it('keeps a link made again while it was doomed', async () => {
      const store = await makeStore();
      const name = repo('relinked');
      const record = await linked(store, name);
      const since = await sinceNow(store);
      expect(await store.doomLink(name, record.digest, 'run-3', since)).toBe(true);
      // Act: the re-link may replace the doomed link at once (DynamoDB) or wait for the drop (in-process stores)
      const relinked = store.linkBlob(name, record);
      await store.dropLink(name, record.digest, 'run-3');
      // Assess
      expect(await relinked).toBe(true);
      expect(await store.getLinkedBlob(name, record.digest)).toEqual(record);
    });

    it('refuses to link or mount a doomed record; a new upload replaces it and the run deletes only the old bytes', async () => {
      // Prepare
      const store = await makeStore();
      const [name, other] = [repo('doomed-blob'), repo('mount')];
      const record = blobRecord();
      await store.putBlob(record);
      const since = await sinceNow(store);
      // Act
      const doomed = await store.doomBlob(record.digest, 'run-4', since);
      const mounted = await store.linkBlob(other, record);
      const uploaded = { ...record, location: `loc/${randomUUID()}` };
      const replacing = store.putBlob(uploaded);
      const deletedBytes: string[] = [];
      await store.dropBlob(doomed!, 'run-4', async (location) => {
        deletedBytes.push(location);
      });
      // Assess
      expect(doomed).toEqual(record);
      expect(mounted).toBe(false);
      expect(await replacing).toEqual(uploaded);
      expect(deletedBytes).toEqual([record.location]);
      expect(await store.getBlob(record.digest)).toEqual(uploaded);
      expect(await store.linkBlob(name, uploaded)).toBe(true);
      expect(await store.linkBlob(name, record)).toBe(false);
    });

    it('does not doom a blob record linked at or after the scan began', async () => {
      const store = await makeStore();
      const record = blobRecord();
      await store.putBlob(record);
      const since = await sinceNow(store);
      expect(await store.linkBlob(repo('late-link'), record)).toBe(true);
      expect(await store.doomBlob(record.digest, 'run-5', since)).toBeUndefined();
    });

    it('refuses an index whose child manifest is doomed, and drops the doomed manifest', async () => {
      const store = await makeStore();
      const name = repo('doomed-child');
      const child = storedManifest();
      await store.putManifest(name, child, []);
      const since = await sinceNow(store);
      expect(await store.doomManifest(name, child.digest, 'run-6', since)).toBe(true);
      const index = storedManifest({ manifests: [child.digest] });
      await expect(store.putManifest(name, index, ['i'], { references: { blobs: [], manifests: [child.digest] } })).rejects.toMatchObject({ code: 'MANIFEST_BLOB_UNKNOWN' });
      expect(await store.dropManifest(name, child.digest, 'run-6')).toBe(true);
      expect(await store.getManifest(name, child.digest)).toBeUndefined();
    });

    it('scans every manifest, link, blob record and upload session once, page after page', async () => {
      // Prepare
      const store = await makeStore();
      const name = repo('scan');
      const manifests = [storedManifest(), storedManifest()];
      for (const manifest of manifests) await store.putManifest(name, manifest, manifest === manifests[0] ? ['tagged'] : []);
      const records = [await linked(store, name), await linked(store, name), await linked(store, name)];
      const uploadId = `u-${randomBytes(6).toString('hex')}`;
      await store.createUpload({ name, uploadId, offset: 0, version: 0, createdAt: 1234, storage: { uploadId } });
      // Act
      const entries: GcEntry[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.scan(cursor, 2);
        entries.push(...page.items);
        cursor = page.cursor;
      } while (cursor !== undefined);
      // Assess
      const mine = entries.filter((entry) => ('name' in entry && entry.name === name) || (entry.kind === 'blob' && records.some((record) => record.digest === entry.digest)));
      const seen = mine.map((entry) => {
        switch (entry.kind) {
          case 'manifest':
            return `manifest ${entry.manifest.digest} ${entry.tagged}`;
          case 'link':
            return `link ${entry.digest} ${entry.size}`;
          case 'blob':
            return `blob ${entry.digest} ${entry.location}`;
          case 'upload':
            return `upload ${entry.uploadId} ${entry.createdAt}`;
          default:
            return entry.kind;
        }
      });
      expect(seen.sort()).toEqual(
        [
          `manifest ${manifests[0]!.digest} true`,
          `manifest ${manifests[1]!.digest} false`,
          ...records.map((record) => `link ${record.digest} ${record.size}`),
          ...records.map((record) => `blob ${record.digest} ${record.location}`),
          `upload ${uploadId} 1234`,
        ].sort(),
      );
      const manifestEntry = mine.find((entry) => entry.kind === 'manifest' && entry.manifest.digest === manifests[1]!.digest);
      expect(manifestEntry?.kind === 'manifest' && Buffer.from(manifestEntry.manifest.content).equals(Buffer.from(manifests[1]!.content))).toBe(true);
    });
  });
}

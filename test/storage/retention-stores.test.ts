import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { digestOf } from '../../lib/registry/digest.ts';
import type { RepositoryPolicy } from '../../lib/registry/policy.ts';
import type { MetadataStore } from '../../lib/registry/ports.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { planRetention } from '../../lib/registry/retention-snapshot.ts';
import type { TagHistoryStore } from '../../lib/registry/tag-history.ts';
import { DynamoDbMetadataStore } from '../../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { DynamoDbTagHistoryStore } from '../../lib/storage/dynamodb/dynamodb-tag-history-store.ts';
import { openFsStorage } from '../../lib/storage/fs/open-fs-storage.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { MemoryTagHistoryStore } from '../../lib/storage/memory/memory-tag-history-store.ts';
import { useLocalBackends } from '../support/local-backends.ts';

/** The retention plan read from real stores (memory, fs, DynamoDB Local), after pushes through the registry. */

const DAY = 86_400_000;
const INDEX = 'application/vnd.oci.image.index.v1+json';
const local = useLocalBackends('retention');

const backends: Record<string, () => Promise<{ metadata: MetadataStore; history: TagHistoryStore }>> = {
  memory: async () => {
    const metadata = new MemoryMetadataStore();
    return { metadata, history: new MemoryTagHistoryStore(metadata) };
  },
  fs: async () => openFsStorage(join(local.dir, String(Math.random()))),
  'DynamoDB Local': async () => ({ metadata: new DynamoDbMetadataStore({ dynamo: local.aws.dynamo, table: local.names.table }), history: new DynamoDbTagHistoryStore({ dynamo: local.aws.dynamo, table: local.names.table }) }),
};

const body = (fields: Record<string, unknown>) => JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [], ...fields });
const bytes = (text: string) =>
  (async function* () {
    yield new TextEncoder().encode(text);
  })();
const digest = (text: string) => digestOf(new TextEncoder().encode(text));

for (const [backend, open] of Object.entries(backends)) {
  describe(`retention over ${backend}`, () => {
    it('plans the rules from recorded push times, index children, referrers and tags moved away', async () => {
      // Prepare: in a repository of its own, three tags pushed in order, an index with a child and a signature
      const stores = await open();
      const registry = new Registry({ blobs: new MemoryBlobStore(), metadata: stores.metadata, history: stores.history });
      const name = `retention-${Math.random().toString(36).slice(2, 8)}/app`;
      const child = body({ annotations: { role: 'child' } });
      await registry.putManifest(name, digest(child), bytes(child), INDEX);
      const index = body({ manifests: [{ mediaType: INDEX, digest: digest(child), size: child.length }] });
      const signature = body({ annotations: { role: 'signature' }, subject: { mediaType: INDEX, digest: digest(index), size: index.length } });
      await registry.putManifest(name, 'old', bytes(index), INDEX);
      await registry.putManifest(name, digest(signature), bytes(signature), INDEX);
      await sleep(20);
      const first = body({ annotations: { n: '1' } });
      await registry.putManifest(name, 'v1.0', bytes(first), INDEX);
      await sleep(20);
      const newest = body({ annotations: { n: '2' } });
      await registry.putManifest(name, 'latest', bytes(newest), INDEX);
      const policies: RepositoryPolicy[] = [{ glob: name, keepLast: 1, protect: ['v*'], immutable: false, mutableTags: [], updatedAt: 1 }];
      // Act
      const plan = await planRetention(stores, policies, Date.now());
      // Assess: `old` is beyond the newest tag (v1.0 is protected); its index goes with its only child and its signature
      expect(plan.tags).toEqual([{ name, tag: 'old', digest: digest(index), reason: 'not among the 1 most recently pushed tags' }]);
      expect(new Map(plan.manifests.map((manifest) => [manifest.digest, manifest.reason]))).toEqual(
        new Map([
          [digest(index), 'its tags expired'],
          [digest(child), 'only a deleted index referenced it'],
          [digest(signature), `its subject ${digest(index)} goes`],
        ]),
      );

      // Act: `latest` moves on; 8 days later, with an untagged rule, the manifest it left stays only as a rollback target
      const next = body({ annotations: { n: '3' } });
      await registry.putManifest(name, 'latest', bytes(next), INDEX);
      await registry.deleteManifest(name, 'latest');
      const later = await planRetention(stores, [{ ...policies[0]!, keepLast: undefined, expireUntaggedMs: 7 * DAY } as RepositoryPolicy], Date.now() + 8 * DAY);
      // Assess: `latest` is gone, so nothing pins what it pointed at: both of its manifests are untagged past 7 days
      expect(later.tags).toEqual([]);
      expect(later.manifests.map((manifest) => manifest.digest).sort()).toEqual([digest(newest), digest(next)].sort());
      expect(later.manifests[0]?.reason).toMatch(/^untagged for 8d \(expire untagged after 7d\)$/);
    });
  });
}

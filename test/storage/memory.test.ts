import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryManifestBodyStore } from '../../lib/storage/memory/memory-manifest-body-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { MemoryTagHistoryStore } from '../../lib/storage/memory/memory-tag-history-store.ts';
import { blobStoreContract } from './blob-store.contract.ts';
import { gcStoreContract } from './gc-store.contract.ts';
import { manifestBodyStoreContract } from './manifest-body-store.contract.ts';
import { metadataStoreContract } from './metadata-store.contract.ts';
import { tagHistoryStoreContract } from './tag-history-store.contract.ts';

blobStoreContract('memory', async () => ({ store: new MemoryBlobStore() }));
metadataStoreContract('memory', async () => new MemoryMetadataStore());
manifestBodyStoreContract('memory', async () => new MemoryManifestBodyStore());
tagHistoryStoreContract('memory', async (depth) => {
  const metadata = new MemoryMetadataStore();
  return { metadata, history: new MemoryTagHistoryStore(metadata, depth) };
});
gcStoreContract('memory', async () => new MemoryMetadataStore());

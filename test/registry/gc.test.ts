import { access } from 'node:fs/promises';
import { afterAll } from 'vitest';
import { Registry } from '../../lib/registry/registry.ts';
import { openFsStorage } from '../../lib/storage/fs/open-fs-storage.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { gcContract } from './gc.contract.ts';

const dirs = tempDirs('ocireg-gc-');
afterAll(() => dirs.cleanUp());

gcContract('memory', async () => {
  const blobs = new MemoryBlobStore();
  const metadata = new MemoryMetadataStore();
  return {
    registry: new Registry({ blobs, metadata }),
    metadata,
    blobs,
    bytesExist: (location) => blobs.read(location).then(() => true, () => false),
  };
});

gcContract('fs', async () => {
  const storage = await openFsStorage(await dirs.make());
  return {
    registry: new Registry({ blobs: storage.blobs, metadata: storage.metadata }),
    metadata: storage.metadata,
    blobs: storage.blobs,
    bytesExist: (location) => access(storage.keys.blobPath(location)).then(() => true, () => false),
  };
});

import { afterAll } from 'vitest';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { openFsStorage } from '../../lib/storage/fs/open-fs-storage.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { malformedRequestsContract } from './malformed-requests.contract.ts';

const dirs = tempDirs('ocireg-malformed-');
afterAll(() => dirs.cleanUp());

malformedRequestsContract('memory', async () => ({ blobs: new MemoryBlobStore(), metadata: new MemoryMetadataStore() }));
malformedRequestsContract('fs', async () => openFsStorage(await dirs.make()));

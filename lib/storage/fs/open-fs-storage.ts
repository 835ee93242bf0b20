import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { FsBlobStore } from './fs-blob-store.ts';
import { FsMetadataStore } from './fs-metadata-store.ts';
import { FsTagHistoryStore } from './fs-tag-history-store.ts';
import { FsKeys } from './keys.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import { DEFAULT_HISTORY_DEPTH } from '../../registry/tag-history.ts';

/**
 * Opens (creating if needed) a data dir as the storage ports. Temp files left by a crash are removed:
 * they were never renamed into place, so nothing refers to them. `maxChunkLength` emulates the serverless body limit.
 */
export async function openFsStorage(dataDir: string, maxChunkLength?: number): Promise<{ blobs: FsBlobStore; metadata: FsMetadataStore; history: FsTagHistoryStore; keys: FsKeys }> {
  const keys = new FsKeys(resolve(dataDir));
  await rm(keys.tmpDir, { recursive: true, force: true });
  await Promise.all([keys.tmpDir, keys.uploadsDir, keys.repositoriesDir].map((dir) => mkdir(dir, { recursive: true })));
  // One set of tag locks for both stores: a tag and its history file change together (fs-tag-file.ts).
  const locks = new KeyedMutex();
  return { blobs: new FsBlobStore(keys, maxChunkLength), metadata: new FsMetadataStore(keys, locks), history: new FsTagHistoryStore(keys, DEFAULT_HISTORY_DEPTH, locks), keys };
}

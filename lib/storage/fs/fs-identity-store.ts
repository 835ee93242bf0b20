import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { emptyIdentityDocument, type IdentityDocument } from '../../auth/identity-document.ts';
import { DocumentIdentityStore, type IdentityDocumentStorage } from '../document-identity-store.ts';
import { readFileIfExists, writeFileAtomic } from './atomic-file.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import type { FsKeys } from './keys.ts';

/**
 * Identities in one JSON file (mode 0600), re-read on every call so that `ocireg users|tokens|grants|repos`
 * run against the data dir take effect in a running server at once. Failed-login counters live in memory.
 */
export class FsIdentityStore extends DocumentIdentityStore {
  constructor(keys: FsKeys) {
    super(identityFile(keys));
  }
}

/** The identity document as a file, rewritten whole under an in-process lock. */
function identityFile(keys: FsKeys): IdentityDocumentStorage {
  const mutex = new KeyedMutex();
  const read = async (): Promise<IdentityDocument> => {
    const text = await readFileIfExists(keys.identities);
    return text === undefined ? emptyIdentityDocument() : { ...emptyIdentityDocument(), ...(JSON.parse(text) as IdentityDocument) };
  };
  return {
    read,
    edit: (change) =>
      mutex.run('identities', async () => {
        const doc = await read();
        const result = change(doc);
        // The admin commands may run before the first `ocireg serve` created the data dir.
        await mkdir(dirname(keys.identities), { recursive: true, mode: 0o700 });
        await mkdir(keys.tmpDir, { recursive: true });
        await writeFileAtomic(keys.tmpDir, keys.identities, JSON.stringify(doc, null, 2), 0o600);
        return result;
      }),
  };
}

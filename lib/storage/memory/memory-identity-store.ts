import { emptyIdentityDocument } from '../../auth/identity-document.ts';
import { DocumentIdentityStore } from '../document-identity-store.ts';

/**
 * Identities in memory: the fake for auth unit tests. The document is copied in and out, as the fs store's file is
 * written and read, so that no caller changes it by changing what it passed or got.
 */
export class MemoryIdentityStore extends DocumentIdentityStore {
  constructor() {
    let stored = emptyIdentityDocument();
    super({
      read: async () => structuredClone(stored),
      // Synchronous from copy to store: edits cannot interleave.
      edit: async (change) => {
        const doc = structuredClone(stored);
        const result = change(doc);
        stored = structuredClone(doc);
        return result;
      },
    });
  }
}

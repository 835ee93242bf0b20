import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { digestOf } from '../../lib/registry/digest.ts';
import type { ManifestBodyStore } from '../../lib/registry/ports.ts';

const MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';

/** A manifest body over DynamoDB's item size, with its real digest. */
function largeBody(size = 420_000): { digest: string; content: Uint8Array } {
  const content = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, padding: randomBytes(size).toString('base64').slice(0, size) }));
  return { digest: digestOf(content), content };
}

/** The contract every ManifestBodyStore passes (memory, s3). */
export function manifestBodyStoreContract(backend: string, makeStore: () => Promise<ManifestBodyStore>): void {
  describe(`ManifestBodyStore contract: ${backend}`, () => {
    it('reads back the exact bytes put under a digest', async () => {
      // Prepare
      const store = await makeStore();
      const body = largeBody();
      // Act
      await store.put(body.digest, body.content, MEDIA_TYPE);
      const read = await store.get(body.digest);
      // Assess
      expect(read).toBeDefined();
      expect(Buffer.from(read!).equals(Buffer.from(body.content))).toBe(true);
    });

    it('answers undefined for a digest never put', async () => {
      const store = await makeStore();
      expect(await store.get(largeBody(10).digest)).toBeUndefined();
    });

    it('keeps one body per digest when it is put twice, concurrently or not', async () => {
      const store = await makeStore();
      const body = largeBody(1000);
      await Promise.all([store.put(body.digest, body.content, MEDIA_TYPE), store.put(body.digest, body.content, MEDIA_TYPE)]);
      await store.put(body.digest, body.content, MEDIA_TYPE);
      expect(Buffer.from((await store.get(body.digest))!).equals(Buffer.from(body.content))).toBe(true);
    });

    it('deletes a body, and deleting it again or one never put is no error', async () => {
      const store = await makeStore();
      const body = largeBody(1000);
      await store.put(body.digest, body.content, MEDIA_TYPE);
      await store.delete(body.digest);
      await store.delete(body.digest);
      await store.delete(largeBody(10).digest);
      expect(await store.get(body.digest)).toBeUndefined();
    });

    it('is not changed by a caller that modifies its buffer after put', async () => {
      const store = await makeStore();
      const body = largeBody(1000);
      const copy = new Uint8Array(body.content);
      await store.put(body.digest, copy, MEDIA_TYPE);
      copy.fill(0);
      expect(Buffer.from((await store.get(body.digest))!).equals(Buffer.from(body.content))).toBe(true);
    });
  });
}

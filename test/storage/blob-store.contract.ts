import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytesOf, readAll } from '../../lib/registry/bytes.ts';
import { isOciError } from '../../lib/registry/errors.ts';
import type { BlobRead, BlobStore } from '../../lib/registry/ports.ts';
import { parsedSha256 as sha256 } from '../support/digests.ts';

/** What a backend's test file hands the contract: a fresh store, and how to fetch a redirect's bytes. */
export interface BlobStoreHarness {
  store: BlobStore;
  /** Follows a `redirect` read (HTTP GET of the URL, with an optional Range header). */
  fetchRedirect?: (url: string, range?: string) => Promise<Uint8Array>;
}


/**
 * The contract every BlobStore passes (memory, fs, s3). Sizes stay under the smallest maxChunkLength a store may
 * set per append; multi-append uploads use several appends.
 */
export function blobStoreContract(backend: string, makeHarness: () => Promise<BlobStoreHarness>): void {
  describe(`BlobStore contract: ${backend}`, () => {
    async function bytesOfRead(harness: BlobStoreHarness, read: BlobRead, range?: string): Promise<Uint8Array> {
      if (read.kind === 'stream') return readAll(read.body);
      if (!harness.fetchRedirect) throw new Error('store redirected but the harness cannot follow redirects');
      return harness.fetchRedirect(read.url, range);
    }

    it('commits an upload made of one append and reads it back whole and by range', async () => {
      // Prepare
      const harness = await makeHarness();
      const { store } = harness;
      const content = randomBytes(300_000);
      // Act
      const state = await store.startUpload('u-one');
      const appended = await store.append(state, 0, bytesOf(content), content.byteLength);
      const location = await store.commit(appended.state, sha256(content), appended.size);
      // Assess
      expect(appended.size).toBe(content.byteLength);
      expect(Buffer.from(await bytesOfRead(harness, await store.read(location)))).toEqual(content);
      const ranged = await store.read(location, { start: 1000, end: 1999 });
      expect(Buffer.from(await bytesOfRead(harness, ranged, 'bytes=1000-1999'))).toEqual(content.subarray(1000, 2000));
    });

    it('hands the registry a small blob\'s bytes in process: readBytes, or a streamed read (Registry.readSmallBlob)', async () => {
      // Prepare
      const { store } = await makeHarness();
      const content = new TextEncoder().encode(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['A=1'] } }));
      const state = await store.startUpload('u-small');
      const appended = await store.append(state, 0, bytesOf(content), content.byteLength);
      const location = await store.commit(appended.state, sha256(content), appended.size);
      // Act
      const read = store.readBytes ? await store.readBytes(location) : await store.read(location);
      // Assess
      const bytes = read instanceof Uint8Array ? read : read.kind === 'stream' ? await readAll(read.body) : undefined;
      expect(bytes && Buffer.from(bytes)).toEqual(Buffer.from(content));
    });

    it('commits an upload made of many small appends, in order', async () => {
      const harness = await makeHarness();
      const { store } = harness;
      const pieces = [randomBytes(1), randomBytes(70_000), randomBytes(5), randomBytes(123_457)];
      const content = Buffer.concat(pieces);
      let state = await store.startUpload('u-many');
      let size = 0;
      for (const piece of pieces) {
        ({ state, size } = await store.append(state, size, bytesOf(piece), piece.byteLength));
      }
      const location = await store.commit(state, sha256(content), size);
      expect(size).toBe(content.byteLength);
      expect(Buffer.from(await bytesOfRead(harness, await store.read(location)))).toEqual(content);
    });

    it('accepts a streamed append of unknown length split into odd chunks', async () => {
      const harness = await makeHarness();
      const { store } = harness;
      const content = randomBytes(200_000);
      const state = await store.startUpload('u-stream');
      const parts = [content.subarray(0, 3), content.subarray(3, 150_001), content.subarray(150_001)];
      const appended = await store.append(state, 0, bytesOf(...parts));
      const location = await store.commit(appended.state, sha256(content), appended.size);
      expect(Buffer.from(await bytesOfRead(harness, await store.read(location)))).toEqual(content);
    });

    it('commits an empty blob', async () => {
      const harness = await makeHarness();
      const { store } = harness;
      const state = await store.startUpload('u-empty');
      const location = await store.commit(state, sha256(new Uint8Array()), 0);
      expect((await bytesOfRead(harness, await store.read(location))).byteLength).toBe(0);
    });

    it('refuses a commit whose digest does not match, with DIGEST_INVALID', async () => {
      const { store } = await makeHarness();
      const content = randomBytes(10_000);
      const state = await store.startUpload('u-bad');
      const appended = await store.append(state, 0, bytesOf(content), content.byteLength);
      const wrong = sha256(randomBytes(10));
      const error = await store.commit(appended.state, wrong, appended.size).catch((e: unknown) => e);
      expect(isOciError(error, 'DIGEST_INVALID')).toBe(true);
      await store.abort(appended.state);
    });

    it('aborts idempotently', async () => {
      const { store } = await makeHarness();
      const state = await store.startUpload('u-abort');
      const appended = await store.append(state, 0, bytesOf(randomBytes(1000)), 1000);
      await store.abort(appended.state);
      await expect(store.abort(appended.state)).resolves.toBeUndefined();
    });

    it('keeps a committed blob when the same content is uploaded and committed again', async () => {
      const harness = await makeHarness();
      const { store } = harness;
      const content = randomBytes(50_000);
      const first = await store.startUpload('u-dup-1');
      const a = await store.append(first, 0, bytesOf(content), content.byteLength);
      const locationA = await store.commit(a.state, sha256(content), a.size);
      const second = await store.startUpload('u-dup-2');
      const b = await store.append(second, 0, bytesOf(content), content.byteLength);
      const locationB = await store.commit(b.state, sha256(content), b.size);
      expect(Buffer.from(await bytesOfRead(harness, await store.read(locationA)))).toEqual(content);
      expect(Buffer.from(await bytesOfRead(harness, await store.read(locationB)))).toEqual(content);
    });
  });
}

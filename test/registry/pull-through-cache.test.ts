import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytesOf } from '../../lib/registry/bytes.ts';
import type { Upstream } from '../../lib/registry/ports.ts';
import { PullThroughCache } from '../../lib/registry/pull-through-cache.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryCacheRuleStore } from '../../lib/storage/memory/memory-cache-rule-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';

/** The race "cache fill vs pull" (timeline in pull-through-cache.ts), step by step, over memory stores. */
describe('PullThroughCache fill vs pull', () => {
  it('serves two pulls that miss one blob at once from a single upstream copy, and both get the stored record', async () => {
    // Prepare: an upstream whose blob body waits until both pulls have missed.
    const bytes = randomBytes(4096);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    let opened = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const upstream: Upstream = {
      headManifest: async () => undefined,
      getManifest: async () => undefined,
      openBlob: async () => {
        opened++;
        await gate;
        return { size: bytes.length, body: bytesOf(bytes) };
      },
    };
    const rules = new MemoryCacheRuleStore();
    await rules.put({ prefix: 'hub', upstream: 'https://upstream.test' });
    const metadata = new MemoryMetadataStore();
    const cache = new PullThroughCache({ rules, blobs: new MemoryBlobStore(), metadata, upstreamFor: () => upstream, revalidateAfterMs: 60_000 });

    // Act: pull A misses and starts the fill; pull B misses while A's copy is in flight.
    const a = cache.getBlob('hub/library/app', digest);
    await new Promise((resolve) => setImmediate(resolve));
    const visibleDuringFill = await metadata.getBlob(digest);
    const b = cache.getBlob('hub/library/app', digest);
    release();
    const [recordA, recordB] = await Promise.all([a, b]);

    // Assess
    expect(visibleDuringFill).toBeUndefined();
    expect(opened).toBe(1);
    expect(recordA).toEqual(recordB);
    expect(await metadata.getLinkedBlob('hub/library/app', digest)).toEqual(recordA);
  });

  it('keeps nothing visible when the upstream bytes do not match the digest', async () => {
    const digest = `sha256:${createHash('sha256').update('expected').digest('hex')}`;
    const upstream: Upstream = {
      headManifest: async () => undefined,
      getManifest: async () => undefined,
      openBlob: async () => ({ size: 8, body: bytesOf(Buffer.from('tampered')) }),
    };
    const rules = new MemoryCacheRuleStore();
    await rules.put({ prefix: 'hub', upstream: 'https://upstream.test' });
    const metadata = new MemoryMetadataStore();
    const cache = new PullThroughCache({ rules, blobs: new MemoryBlobStore(), metadata, upstreamFor: () => upstream, revalidateAfterMs: 60_000 });

    await expect(cache.getBlob('hub/library/app', digest)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    expect(await metadata.getBlob(digest)).toBeUndefined();
    expect(await metadata.getLinkedBlob('hub/library/app', digest)).toBeUndefined();
  });
});

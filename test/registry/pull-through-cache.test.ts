import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytesOf } from '../../lib/registry/bytes.ts';
import type { CacheRule, Upstream } from '../../lib/registry/ports.ts';
import { CACHE_RULES_TTL_MS, PullThroughCache } from '../../lib/registry/pull-through-cache.ts';
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

describe('PullThroughCache rules', () => {
  it('reads the rules once per CACHE_RULES_TTL_MS however many requests ask, and sees a new rule after it', async () => {
    // Prepare: a store that counts its list calls, and a clock the test moves.
    const rules = new MemoryCacheRuleStore();
    let lists = 0;
    const counted = { put: (rule: CacheRule) => rules.put(rule), remove: (prefix: string) => rules.remove(prefix), list: () => (lists++, rules.list()) };
    let now = 1_000_000;
    const cache = new PullThroughCache({
      rules: counted,
      blobs: new MemoryBlobStore(),
      metadata: new MemoryMetadataStore(),
      upstreamFor: () => {
        throw new Error('no upstream in this test');
      },
      revalidateAfterMs: 60_000,
      now: () => now,
    });

    // Act
    const before = await Promise.all(['hub/a', 'hub/b', 'team/c'].map((name) => cache.ruleOf(name)));
    await rules.put({ prefix: 'hub', upstream: 'https://upstream.test' });
    now += CACHE_RULES_TTL_MS - 1;
    const stale = await cache.ruleOf('hub/a');
    now += 1;
    const fresh = await cache.ruleOf('hub/a');

    // Assess
    expect(before).toEqual([undefined, undefined, undefined]);
    expect(stale).toBeUndefined();
    expect(fresh?.upstreamName).toBe('a');
    expect(lists).toBe(2);
  });
});

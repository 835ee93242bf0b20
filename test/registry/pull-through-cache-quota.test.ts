import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytesOf, readAll } from '../../lib/registry/bytes.ts';
import { parseDigest } from '../../lib/registry/digest.ts';
import { PolicyCache } from '../../lib/registry/policy-cache.ts';
import type { Upstream } from '../../lib/registry/ports.ts';
import { PullThroughCache } from '../../lib/registry/pull-through-cache.ts';
import { QuotaGuard } from '../../lib/registry/quota.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryCacheRuleStore } from '../../lib/storage/memory/memory-cache-rule-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { MemoryPolicyStore } from '../../lib/storage/memory/memory-policy-store.ts';
import { MemoryUsageStore } from '../../lib/storage/memory/memory-usage-store.ts';

/** Quotas on cached repositories: they bound what the cache keeps, never whether a pull works. */
describe('PullThroughCache within a quota', () => {
  it('streams a blob over the quota to the client from the upstream, stores nothing, and logs a warning', async () => {
    // Prepare: the repository already holds 80 KB of a 100 KB quota.
    const held = randomBytes(80_000);
    const bytes = randomBytes(40_000);
    const upstream = upstreamOf(held, bytes);
    const { cache, metadata, usage, logs } = await quotaCache(upstream, 100_000);
    await streamed(cache, 'hub/library/app', digestOf(held));

    // Act
    const body = await streamed(cache, 'hub/library/app', digestOf(bytes));
    const again = await streamed(cache, 'hub/library/app', digestOf(bytes));

    // Assess: the blob that fit is stored and linked; both pulls of the other got its bytes, each from the upstream,
    // and nothing of it was kept.
    expect(body.equals(bytes)).toBe(true);
    expect(again.equals(bytes)).toBe(true);
    expect(upstream.opened()).toBe(3);
    expect(await metadata.getBlob(digestOf(bytes))).toBeUndefined();
    expect([...(await usage.repositoryBlobs('hub/library/app')).keys()]).toEqual([digestOf(held)]);
    expect(logs).toHaveLength(2);
    expect(logs[0]).toMatchObject({ level: 'warn', msg: 'cache fill over quota: served from the upstream, not stored', name: 'hub/library/app', digest: digestOf(bytes), size: bytes.length });
    expect(String(logs[0]!.cause)).toContain('over the quota of 100000 bytes');
  });

  it('fails the body of a blob over the quota before its last chunk when the upstream bytes do not match', async () => {
    const bytes = randomBytes(40_000);
    const { cache, logs } = await quotaCache(upstreamOf(randomBytes(bytes.length)), 10_000);
    const opened = await cache.openBlob('hub/library/app', digestOf(bytes));
    const received: Uint8Array[] = [];

    const failure = await (async () => {
      if (opened!.read.kind !== 'stream') throw new Error('expected a streamed miss');
      for await (const chunk of opened!.read.body) received.push(chunk);
    })().catch((error: unknown) => error);

    expect(failure).toMatchObject({ code: 'DIGEST_INVALID' });
    expect(logs.map((line) => line.msg)).toEqual(['cache fill over quota: served from the upstream, not stored', 'upstream blob not cached']);
    expect(Buffer.concat(received).length).toBeLessThan(bytes.length);
  });

  it('answers a HEAD of a blob over the quota with its size and the quota refusal (what a Range read answers), without downloading it', async () => {
    const bytes = randomBytes(40_000);
    const upstream = upstreamOf(bytes);
    const { cache, metadata } = await quotaCache(upstream, 10_000);

    const stat = await cache.getBlob('hub/library/app', digestOf(bytes));

    expect(stat).toMatchObject({ digest: digestOf(bytes), size: bytes.length, read: undefined, refused: { code: 'DENIED' } });
    expect(upstream.chunksRead()).toBe(0);
    expect(await metadata.getBlob(digestOf(bytes))).toBeUndefined();
  });

  it('serves a blob another repository stores without linking it into a cached repository over its quota', async () => {
    const bytes = randomBytes(40_000);
    const digest = digestOf(bytes);
    const upstream = upstreamOf(bytes);
    const { cache, metadata, blobs, logs } = await quotaCache(upstream, 10_000);
    const upload = await blobs.append(await blobs.startUpload('team-upload'), 0, bytesOf(bytes));
    const location = await blobs.commit(upload.state, parseDigest(digest), upload.size);
    await metadata.linkBlob('team/app', await metadata.putBlob({ digest, size: bytes.length, location }));

    const opened = await cache.openBlob('hub/library/app', digest);

    expect(opened!.record).toMatchObject({ digest, size: bytes.length });
    expect(opened!.read.kind === 'stream' && Buffer.from(await readAll(opened!.read.body)).equals(bytes)).toBe(true);
    expect(upstream.opened()).toBe(0);
    expect(await metadata.getLinkedBlob('hub/library/app', digest)).toBeUndefined();
    expect(logs[0]).toMatchObject({ msg: 'cached blob over quota: served, not kept', name: 'hub/library/app' });
  });
});

function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** An upstream serving each of `blobs` by digest, in 8 KiB chunks. */
function upstreamOf(...blobs: Uint8Array[]): Upstream & { opened(): number; chunksRead(): number } {
  let opened = 0;
  let chunks = 0;
  return {
    headManifest: async () => undefined,
    getManifest: async () => undefined,
    openBlob: async (_name, digest) => {
      // A corrupting upstream (one blob, asked for another digest) answers its one blob.
      const bytes = blobs.find((blob) => digestOf(blob) === digest) ?? blobs[0]!;
      opened++;
      async function* body(): AsyncIterable<Uint8Array> {
        for (let at = 0; at < bytes.length; at += 8192) {
          chunks++;
          yield bytes.subarray(at, at + 8192);
        }
      }
      return { size: bytes.length, body: body() };
    },
    opened: () => opened,
    chunksRead: () => chunks,
  };
}

async function quotaCache(upstream: Upstream, quotaBytes: number) {
  const rules = new MemoryCacheRuleStore();
  await rules.put({ prefix: 'hub', upstream: 'https://upstream.test' });
  const metadata = new MemoryMetadataStore();
  const policies = new MemoryPolicyStore();
  await policies.putPolicy({ glob: 'hub/**', quotaBytes, protect: [], immutable: false, mutableTags: [], updatedAt: 0 });
  const blobs = new MemoryBlobStore();
  const logs: Record<string, unknown>[] = [];
  const usage = new MemoryUsageStore(metadata);
  const quota = new QuotaGuard(new PolicyCache(policies), usage);
  const cache = new PullThroughCache({ rules, blobs, metadata, upstreamFor: () => upstream, revalidateAfterMs: 60_000, quota, log: (entry) => logs.push(entry) });
  return { cache, metadata, usage, blobs, logs };
}

/** A whole-blob GET through the cache, its body read to the end. */
async function streamed(cache: PullThroughCache, name: string, digest: string): Promise<Buffer> {
  const opened = await cache.openBlob(name, digest);
  if (!opened) throw new Error(`${name} is not cached`);
  if (opened.read.kind !== 'stream') throw new Error(`expected a stream, got ${opened.read.kind}`);
  const chunks: Uint8Array[] = [];
  for await (const chunk of opened.read.body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bytesOf, readAll } from '../../lib/registry/bytes.ts';
import type { CacheRule, Upstream } from '../../lib/registry/ports.ts';
import { CACHE_RULES_TTL_MS, PullThroughCache } from '../../lib/registry/pull-through-cache.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryCacheRuleStore } from '../../lib/storage/memory/memory-cache-rule-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { MemoryTagHistoryStore } from '../../lib/storage/memory/memory-tag-history-store.ts';
import { TagVersions } from '../../lib/registry/tag-versions.ts';

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

  it('keeps the upload of a refused blob out of the store (nothing to collect later)', async () => {
    // Prepare
    const digest = `sha256:${createHash('sha256').update('expected').digest('hex')}`;
    const blobs = new MemoryBlobStore();
    const aborted: unknown[] = [];
    const abort = blobs.abort.bind(blobs);
    blobs.abort = async (state) => {
      aborted.push(state);
      return abort(state);
    };
    const { cache } = await cacheOver(upstreamOf(Buffer.from('tampered')), blobs);

    // Act
    const refused = await cache.getBlob('hub/library/app', digest).catch((error: unknown) => error);

    // Assess
    expect(refused).toMatchObject({ code: 'DIGEST_INVALID' });
    expect(aborted).toHaveLength(1);
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

/** The tee of a miss: the client's bytes flow while the store fills (timeline at PullThroughCache.#copy). */
describe('PullThroughCache streamed miss', () => {
  it('streams the first chunks to the client before the upstream has finished, and the last one only once the blob is stored', async () => {
    // Prepare: an upstream that sends half, then waits.
    const bytes = randomBytes(64 * 1024);
    const digest = digestOf(bytes);
    const gate = deferred();
    const upstream = upstreamOf(bytes, { pauseAfter: 32 * 1024, gate: gate.promise });
    const { cache, metadata } = await cacheOver(upstream);

    // Act
    const opened = await cache.openBlob('hub/library/app', digest);
    const reader = opened!.read.kind === 'stream' ? opened!.read.body[Symbol.asyncIterator]() : undefined;
    const first = await reader!.next();
    const recordWhileStreaming = await metadata.getBlob(digest);
    gate.resolve();
    const rest: Uint8Array[] = [];
    let recordAtLastChunk: unknown;
    for (let next = await reader!.next(); !next.done; next = await reader!.next()) {
      rest.push(next.value);
      recordAtLastChunk = await metadata.getBlob(digest);
    }

    // Assess
    expect(opened!.record).toEqual({ digest, size: bytes.length });
    expect(first.done).toBe(false);
    expect(recordWhileStreaming).toBeUndefined();
    expect(recordAtLastChunk).toMatchObject({ digest, size: bytes.length });
    expect(Buffer.concat([first.value as Uint8Array, ...rest]).equals(bytes)).toBe(true);
    expect(await metadata.getLinkedBlob('hub/library/app', digest)).toMatchObject({ digest });
    expect(upstream.opened()).toBe(1);
  });

  it('fails the client body before its last chunk when the upstream bytes do not match, and stores nothing', async () => {
    // Prepare: the upstream answers other bytes of the same length.
    const bytes = randomBytes(64 * 1024);
    const digest = digestOf(bytes);
    const { cache, metadata } = await cacheOver(upstreamOf(randomBytes(bytes.length)));

    // Act
    const opened = await cache.openBlob('hub/library/app', digest);
    const received: Uint8Array[] = [];
    const failure = await (async () => {
      for await (const chunk of (opened!.read as { body: AsyncIterable<Uint8Array> }).body) received.push(chunk);
    })().catch((error: unknown) => error);

    // Assess
    expect(failure).toMatchObject({ code: 'DIGEST_INVALID' });
    expect(Buffer.concat(received).length).toBeLessThan(bytes.length);
    expect(await metadata.getBlob(digest)).toBeUndefined();
    expect(await metadata.getLinkedBlob('hub/library/app', digest)).toBeUndefined();
  });

  it('holds back a chunk with bytes in it when the upstream body ends with an empty one', async () => {
    // Prepare: wrong bytes of the right length, in two chunks and an empty one (a socket's last read can be empty).
    const bytes = randomBytes(16 * 1024);
    const digest = digestOf(bytes);
    const tampered = randomBytes(bytes.length);
    const upstream: Upstream = {
      headManifest: async () => undefined,
      getManifest: async () => undefined,
      openBlob: async () => ({
        size: tampered.length,
        body: (async function* () {
          yield tampered.subarray(0, 8192);
          yield tampered.subarray(8192);
          yield new Uint8Array();
        })(),
      }),
    };
    const { cache, metadata } = await cacheOver(upstream);

    // Act
    const opened = await cache.openBlob('hub/library/app', digest);
    let received = 0;
    const failure = await (async () => {
      for await (const chunk of (opened!.read as { body: AsyncIterable<Uint8Array> }).body) received += chunk.byteLength;
    })().catch((error: unknown) => error);

    // Assess
    expect(failure).toMatchObject({ code: 'DIGEST_INVALID' });
    expect(received).toBe(8192);
    expect(await metadata.getBlob(digest)).toBeUndefined();
  });

  it('fails the client body and stores nothing when the upstream sends more bytes than its Content-Length', async () => {
    const bytes = randomBytes(4096);
    const digest = digestOf(bytes);
    const { cache, metadata } = await cacheOver(upstreamOf(Buffer.concat([bytes, Buffer.from('extra')]), { declaredSize: bytes.length }));

    const opened = await cache.openBlob('hub/library/app', digest);
    const failure = await (async () => {
      for await (const _chunk of (opened!.read as { body: AsyncIterable<Uint8Array> }).body);
    })().catch((error: unknown) => error);

    expect(failure).toMatchObject({ code: 'DIGEST_INVALID', message: expect.stringContaining('more bytes than its Content-Length') });
    expect(await metadata.getBlob(digest)).toBeUndefined();
  });

  it('finishes and verifies the copy for the store when the client goes away mid-blob; the next pull reads the stored blob', async () => {
    // Prepare
    const bytes = randomBytes(64 * 1024);
    const digest = digestOf(bytes);
    const upstream = upstreamOf(bytes);
    const { cache, metadata } = await cacheOver(upstream);

    // Act: take one chunk, then leave (as the HTTP adapter does when the connection closes).
    const opened = await cache.openBlob('hub/library/app', digest);
    const reader = (opened!.read as { body: AsyncIterable<Uint8Array> }).body[Symbol.asyncIterator]();
    await reader.next();
    await reader.return!();
    const record = await cache.getBlob('hub/library/app', digest);
    const again = await cache.openBlob('hub/library/app', digest);

    // Assess
    expect(record).toMatchObject({ digest, size: bytes.length });
    expect(await metadata.getBlob(digest)).toEqual(record);
    expect(again!.read.kind).toBe('stream');
    expect(Buffer.from(await readAll((again!.read as { body: AsyncIterable<Uint8Array> }).body)).equals(bytes)).toBe(true);
    expect(upstream.opened()).toBe(1);
  });

  it('serves a second miss of the same blob from the first one\'s stored copy, with one upstream request', async () => {
    // Prepare
    const bytes = randomBytes(64 * 1024);
    const digest = digestOf(bytes);
    const gate = deferred();
    const upstream = upstreamOf(bytes, { pauseAfter: 16 * 1024, gate: gate.promise });
    const { cache } = await cacheOver(upstream);

    // Act: A streams; B (another repository under the rule) misses while A's copy is paused.
    const a = await cache.openBlob('hub/library/app', digest);
    const bodyA = readAll((a!.read as { body: AsyncIterable<Uint8Array> }).body);
    const b = cache.openBlob('hub/library/other', digest);
    gate.resolve();
    const [bytesA, openedB] = await Promise.all([bodyA, b]);
    const bytesB = await readAll((openedB!.read as { body: AsyncIterable<Uint8Array> }).body);

    // Assess
    expect(Buffer.from(bytesA).equals(bytes)).toBe(true);
    expect(Buffer.from(bytesB).equals(bytes)).toBe(true);
    expect(upstream.opened()).toBe(1);
  });

  it('answers BLOB_UNKNOWN when the upstream has no such blob', async () => {
    const { cache } = await cacheOver({ ...upstreamOf(Buffer.alloc(0)), openBlob: async () => undefined });

    await expect(cache.openBlob('hub/library/app', digestOf(Buffer.from('absent')))).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
  });
});

describe('PullThroughCache tag revalidation', () => {
  it('asks nothing within the interval, a HEAD after it, a GET only when the digest differs or is not given, and never for a digest', async () => {
    // Prepare: an upstream that counts HEADs and GETs; the test moves the clock.
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(Buffer.from('{}')), size: 2 },
      layers: [],
    }));
    const digest = digestOf(manifest);
    const calls: string[] = [];
    let headAnswer: string | undefined = digest;
    const upstream: Upstream = {
      headManifest: async (_name, reference) => (calls.push(`HEAD ${reference}`), headAnswer),
      getManifest: async (_name, reference) => (calls.push(`GET ${reference}`), { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', content: manifest }),
      openBlob: async () => undefined,
    };
    const rules = new MemoryCacheRuleStore();
    await rules.put({ prefix: 'hub', upstream: 'https://upstream.test' });
    const metadata = new MemoryMetadataStore();
    let now = 1_000_000;
    const cache = new PullThroughCache({ rules, blobs: new MemoryBlobStore(), metadata, upstreamFor: () => upstream, revalidateAfterMs: 60_000, now: () => now });
    const history = new MemoryTagHistoryStore(metadata);
    const versions = new TagVersions({ metadata, history });
    const stored = (reference: string) => async () => (reference.startsWith('sha256:') ? metadata.getManifest('hub/library/app', reference) : metadata.resolveTag('hub/library/app', reference));
    const pull = (reference: string) =>
      cache.getManifest('hub/library/app', reference, { cached: stored(reference), store: (manifest, tags, context) => versions.recordFill('hub/library/app', manifest, tags, context) });

    // Act + Assess, step by step
    expect((await pull('1'))?.digest).toBe(digest);
    expect(calls).toEqual(['GET 1']);
    now += 59_999;
    await pull('1');
    expect(calls).toEqual(['GET 1']);
    now += 1;
    await pull('1');
    expect(calls).toEqual(['GET 1', 'HEAD 1']);
    now += 60_000;
    headAnswer = '';
    await pull('1');
    expect(calls).toEqual(['GET 1', 'HEAD 1', 'HEAD 1', 'GET 1']);
    now += 10 * 60_000;
    expect((await pull(digest))?.digest).toBe(digest);
    expect(calls).toHaveLength(4);
  });

  it('records a tag the upstream moved in the tag history, by the cache, saying where it came from', async () => {
    // Prepare: an upstream whose tag 1 points at one manifest, then at another.
    const manifestOf = (seed: string) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(Buffer.from(seed)), size: seed.length }, layers: [] }));
    let served = manifestOf('one');
    const upstream: Upstream = {
      headManifest: async () => digestOf(served),
      getManifest: async () => ({ digest: digestOf(served), mediaType: 'application/vnd.oci.image.manifest.v1+json', content: served }),
      openBlob: async () => undefined,
    };
    const rules = new MemoryCacheRuleStore();
    await rules.put({ prefix: 'hub', upstream: 'https://upstream.test' });
    const metadata = new MemoryMetadataStore();
    const cache = new PullThroughCache({ rules, blobs: new MemoryBlobStore(), metadata, upstreamFor: () => upstream, revalidateAfterMs: 0 });
    const history = new MemoryTagHistoryStore(metadata);
    const versions = new TagVersions({ metadata, history });
    const pull = () =>
      cache.getManifest('hub/library/app', '1', { cached: () => metadata.resolveTag('hub/library/app', '1'), store: (manifest, tags, context) => versions.recordFill('hub/library/app', manifest, tags, context) });

    // Act
    const first = await pull();
    served = manifestOf('two');
    const second = await pull();
    await pull();

    // Assess
    const changes = await versions.history('hub/library/app', '1');
    expect(changes.map(({ action, previous, digest, actor, reason }) => ({ action, previous, digest, actor, reason }))).toEqual([
      { action: 'moved', previous: first!.digest, digest: second!.digest, actor: { subject: 'cache' }, reason: 'filled from https://upstream.test/library/app:1' },
      { action: 'created', previous: undefined, digest: first!.digest, actor: { subject: 'cache' }, reason: 'filled from https://upstream.test/library/app:1' },
    ]);
  });
});

function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

/** An upstream serving `bytes` for any blob in 8 KiB chunks, optionally pausing after `pauseAfter` bytes until `gate`. */
function upstreamOf(bytes: Uint8Array, options: { pauseAfter?: number; gate?: Promise<void>; declaredSize?: number } = {}): Upstream & { opened(): number } {
  let opened = 0;
  async function* body(): AsyncIterable<Uint8Array> {
    for (let at = 0; at < bytes.length; at += 8192) {
      if (options.pauseAfter !== undefined && at === options.pauseAfter) await options.gate;
      yield bytes.subarray(at, at + 8192);
    }
  }
  return {
    headManifest: async () => undefined,
    getManifest: async () => undefined,
    openBlob: async () => {
      opened++;
      return { size: options.declaredSize ?? bytes.length, body: body() };
    },
    opened: () => opened,
  };
}

async function cacheOver(upstream: Upstream, blobs = new MemoryBlobStore()) {
  const rules = new MemoryCacheRuleStore();
  await rules.put({ prefix: 'hub', upstream: 'https://upstream.test' });
  const metadata = new MemoryMetadataStore();
  const cache = new PullThroughCache({ rules, blobs, metadata, upstreamFor: () => upstream, revalidateAfterMs: 60_000 });
  return { cache, metadata, blobs };
}

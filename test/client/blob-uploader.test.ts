import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chunkSizeFor, DEFAULT_CHUNK_SIZE, offsetFromRange, planChunks, uploadBlob } from '../../lib/client/blob-uploader.ts';
import type { HttpResult } from '../../lib/client/http-transport.ts';
import { RegistryClient } from '../../lib/client/registry-client.ts';
import { backoffDelay, RegistryError, withRetry, type RetryPolicy } from '../../lib/client/retry.ts';
import { blobContent, randomBlob } from '../support/builders.ts';
import { startFlakyForwarder, type FlakyForwarder } from '../support/flaky-forwarder.ts';
import { startLocalRegistry, type LocalRegistry } from '../support/local-registry.ts';

const MiB = 1024 * 1024;
const FAST: RetryPolicy = { attempts: 5, baseDelayMs: 5, maxDelayMs: 50 };

function response(headers: Record<string, string>): HttpResult {
  return { status: 202, headers, body: Buffer.alloc(0), url: new URL('http://r/v2/a/blobs/uploads/') };
}

describe('chunk planning', () => {
  it('splits a blob into inclusive ranges of at most the chunk size', () => {
    expect(planChunks(0, 10, 4)).toEqual([
      [0, 3],
      [4, 7],
      [8, 9],
    ]);
    expect(planChunks(8, 10, 4)).toEqual([[8, 9]]);
    expect(planChunks(0, 8, 4)).toEqual([
      [0, 3],
      [4, 7],
    ]);
    expect(planChunks(0, 0, 4)).toEqual([]);
  });

  it('uses the advertised OCI-Chunk-Max-Length, never more, and 4 MiB when none is advertised', () => {
    expect(chunkSizeFor(response({}), undefined)).toBe(DEFAULT_CHUNK_SIZE);
    expect(chunkSizeFor(response({ 'oci-chunk-max-length': '1000' }), undefined)).toBe(1000);
    expect(chunkSizeFor(response({ 'oci-chunk-max-length': '1000' }), 5000)).toBe(1000);
    expect(chunkSizeFor(response({ 'oci-chunk-max-length': '1000' }), 500)).toBe(500);
    expect(chunkSizeFor(response({}), 64 * MiB)).toBe(64 * MiB);
    expect(chunkSizeFor(response({ 'oci-chunk-min-length': '800', 'oci-chunk-max-length': '1000' }), 500)).toBe(800);
  });

  it('reads the next offset from an upload Range', () => {
    expect(offsetFromRange(undefined)).toBe(0);
    expect(offsetFromRange('0-0')).toBe(0);
    expect(offsetFromRange('0-4194303')).toBe(4 * MiB);
    expect(() => offsetFromRange('5-9')).toThrow(/unexpected upload Range/);
  });
});

describe('backoff', () => {
  it('doubles up to the ceiling, with at most 25 % jitter, and honours Retry-After', () => {
    const policy: RetryPolicy = { attempts: 6, baseDelayMs: 100, maxDelayMs: 1000 };
    expect([0, 1, 2, 3, 4].map((n) => backoffDelay(policy, n, undefined, () => 1))).toEqual([100, 200, 400, 800, 1000]);
    expect(backoffDelay(policy, 0, undefined, () => 0)).toBe(75);
    expect(backoffDelay(policy, 0, new RegistryError('busy', 429, { retryAfterMs: 3000 }), () => 1)).toBe(3000);
  });

  it('retries transient failures only, up to the attempts', async () => {
    let calls = 0;
    await expect(withRetry(async () => (++calls < 3 ? Promise.reject(new RegistryError('x', 503)) : 'ok'), FAST)).resolves.toBe('ok');
    expect(calls).toBe(3);
    calls = 0;
    await expect(withRetry(async () => (++calls, Promise.reject(new RegistryError('denied', 403))), FAST)).rejects.toThrow('denied');
    expect(calls).toBe(1);
    calls = 0;
    await expect(withRetry(async () => (++calls, Promise.reject(new RegistryError('down', 502))), FAST)).rejects.toThrow('down');
    expect(calls).toBe(FAST.attempts);
  });
});

describe('uploadBlob against ocireg serve --max-chunk-length', () => {
  let registry: LocalRegistry;
  let forwarder: FlakyForwarder | undefined;
  beforeAll(async () => {
    registry = await startLocalRegistry({ maxChunkLength: 1 * MiB });
  });
  afterAll(async () => registry.close());
  afterEach(async () => {
    await forwarder?.close();
    forwarder = undefined;
  });
  const client = (host: string) => new RegistryClient({ registry: host, plainHttp: true });

  it('uploads in chunks of the advertised maximum, then skips the blob once it exists', async () => {
    // Prepare
    const blob = blobContent(randomBlob(3 * MiB + 123));
    const progress: number[] = [];

    // Act
    const first = await uploadBlob(client(registry.host), 'team/chunks', blob, { retry: FAST, onProgress: (bytes) => progress.push(bytes) });
    const second = await uploadBlob(client(registry.host), 'team/chunks', blob, { retry: FAST });

    // Assess
    expect(first).toEqual({ outcome: 'uploaded', resumedAt: [], chunks: 4 });
    expect(second.outcome).toBe('exists');
    expect(progress.at(-1)).toBe(blob.size);
    const stored = await fetch(`${registry.url}/v2/team/chunks/blobs/${blob.digest}`);
    expect(Buffer.from(await stored.arrayBuffer()).equals(blob.bytes)).toBe(true);
    expect(registry.log.filter((line) => line.status === 413)).toEqual([]);
  });

  it('mounts from another repository instead of uploading', async () => {
    const blob = blobContent(randomBlob(1000));
    await uploadBlob(client(registry.host), 'team/origin', blob, { retry: FAST });
    const result = await uploadBlob(client(registry.host), 'team/copy', blob, { retry: FAST, mountFrom: 'team/origin' });
    expect(result.outcome).toBe('mounted');
  });

  it('resumes from the Range the registry reports after a connection drops mid-chunk, not from zero', async () => {
    // Prepare: the third PATCH dies after half its body
    forwarder = await startFlakyForwarder(registry.url, { failPatch: 3 });
    const blob = blobContent(randomBlob(5 * MiB));

    // Act
    const result = await uploadBlob(client(forwarder.host), 'team/resume', blob, { retry: FAST });

    // Assess: chunks 0 and 1 were kept; the next PATCH after the failure starts at 2 MiB
    expect(result.resumedAt).toEqual([2 * MiB]);
    const ranges = forwarder.requests.filter((r) => r.method === 'PATCH').map((r) => r.contentRange);
    expect(ranges).toEqual([`0-${MiB - 1}`, `${MiB}-${2 * MiB - 1}`, `${2 * MiB}-${3 * MiB - 1}`, `${2 * MiB}-${3 * MiB - 1}`, `${3 * MiB}-${4 * MiB - 1}`, `${4 * MiB}-${5 * MiB - 1}`]);
    expect(forwarder.requests.filter((r) => r.method === 'GET' && r.path.includes('/uploads/'))).toHaveLength(1);
    expect(forwarder.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    const stored = await fetch(`${registry.url}/v2/team/resume/blobs/${blob.digest}`);
    expect(Buffer.from(await stored.arrayBuffer()).equals(blob.bytes)).toBe(true);
  });

  it('retries 503s with backoff and then succeeds', async () => {
    // Prepare: requests 3 and 4 (the first PATCH and its retry status check) answer 503
    forwarder = await startFlakyForwarder(registry.url, { failStatus: { nth: 3, status: 503, count: 2 } });
    const blob = blobContent(randomBlob(2 * MiB));
    const retries: string[] = [];

    // Act
    const result = await uploadBlob(client(forwarder.host), 'team/busy', blob, { retry: FAST, onRetry: (message) => retries.push(message) });

    // Assess
    expect(result.outcome).toBe('uploaded');
    expect(forwarder.requests.filter((r) => r.status === 503)).toHaveLength(2);
    expect(retries.some((message) => /503/.test(message))).toBe(true);
  });

  it('gives up on a permanent error without retrying', async () => {
    const denying: Server = createServer((req, res) => {
      if (req.method === 'HEAD') return res.writeHead(404).end();
      res.writeHead(403, { 'content-type': 'application/json' }).end('{"errors":[{"code":"DENIED","message":"no push"}]}');
    });
    await new Promise<void>((resolve) => denying.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(denying.address() as AddressInfo).port}`;
    try {
      await expect(uploadBlob(client(host), 'team/denied', blobContent(randomBlob(10)), { retry: FAST })).rejects.toThrow(/403: DENIED no push/);
    } finally {
      denying.close();
    }
  });
});

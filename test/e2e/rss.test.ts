import { createHash, randomFillSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB } from '../support/images.ts';
import { startRegistryServer, type RegistryServer } from '../support/registry-server.ts';

/**
 * The memory requirement: "pushing a 1 GiB layer must not grow the process beyond ~200 MB RSS". A 1 GiB
 * layer of fresh random bytes is generated as it is sent (one streamed PATCH, no Content-Length, as docker and
 * skopeo send it), so neither side can hold it in memory; the server's peak RSS (VmHWM) is read from /proc. The
 * same layer is then read back whole. Under 15 s on a 2-core machine, so it runs with the other suites.
 */

const GiB = 1024 * MiB;
const RSS_LIMIT = 200 * 1000 * 1000;

let server: RegistryServer;
/** The 1 GiB layer the push test committed. */
let pushed: { digest: string } | undefined;

beforeAll(async () => {
  server = await startRegistryServer();
});

afterAll(async () => {
  await server?.stop();
});

interface GeneratedBody {
  stream: ReadableStream<Uint8Array>;
  /** The digest of everything produced, once the stream has ended. */
  digest(): string;
  /** The last chunk produced, to compare with a ranged read. */
  lastChunk(): Buffer;
}

/** `size` random bytes produced a mebibyte at a time, on demand, hashed as they go. */
function randomBody(size: number): GeneratedBody {
  const hash = createHash('sha256');
  let produced = 0;
  let last = Buffer.alloc(0);
  let digest: string | undefined;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (produced >= size) {
          digest = `sha256:${hash.digest('hex')}`;
          controller.close();
          return;
        }
        // A fresh buffer per chunk: the HTTP client may still hold the previous one.
        const chunk = randomFillSync(Buffer.allocUnsafe(Math.min(MiB, size - produced)));
        hash.update(chunk);
        produced += chunk.byteLength;
        last = chunk;
        controller.enqueue(chunk);
      },
    },
    { highWaterMark: 0 },
  );
  return {
    stream,
    digest: () => {
      if (digest === undefined) throw new Error(`body not finished: ${produced} of ${size} bytes produced`);
      return digest;
    },
    lastChunk: () => last,
  };
}

describe('memory of ocireg serve under a 1 GiB push', () => {
  it('commits a 1 GiB layer streamed in one PATCH while its peak RSS stays at most 200 MB', async () => {
    // Prepare
    const rssAtStart = await server.rssBytes();
    const samples: number[] = [];
    const sampler = setInterval(() => {
      server.rssBytes().then((rss) => samples.push(rss), () => undefined);
    }, 250);
    const body = randomBody(GiB);
    const start = await fetch(`${server.url}/v2/team/huge/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.get('location')!, server.url);

    // Act
    const started = performance.now();
    const patch = await fetch(location, {
      method: 'PATCH',
      body: body.stream,
      headers: { 'content-type': 'application/octet-stream' },
      duplex: 'half',
    } as RequestInit & { duplex: 'half' });
    const patched = performance.now();
    const digest = body.digest();
    const put = new URL(patch.headers.get('location') ?? location.toString(), server.url);
    put.searchParams.set('digest', digest);
    const commit = await fetch(put, { method: 'PUT' });
    const committed = performance.now();
    clearInterval(sampler);
    const peak = await server.peakRssBytes();

    // Assess
    expect(patch.status, await patch.clone().text()).toBe(202);
    expect(patch.headers.get('range')).toBe(`0-${GiB - 1}`);
    expect(commit.status, await commit.clone().text()).toBe(201);
    expect(commit.headers.get('docker-content-digest')).toBe(digest);
    const head = await fetch(`${server.url}/v2/team/huge/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(GiB));
    const tail = await fetch(`${server.url}/v2/team/huge/blobs/${digest}`, { headers: { range: `bytes=${GiB - MiB}-` } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(body.lastChunk())).toBe(true);
    console.log(
      JSON.stringify({
        metric: 'serve_peak_rss_1GiB_push',
        peakRssBytes: peak,
        peakRssMB: Math.round(peak / 1e6),
        rssAtStartMB: Math.round(rssAtStart / 1e6),
        maxSampledRssMB: Math.round(Math.max(...samples, 0) / 1e6),
        patchMs: Math.round(patched - started),
        putMs: Math.round(committed - patched),
        MBps: Math.round(GiB / 1e6 / ((patched - started) / 1000)),
      }),
    );
    expect(peak).toBeLessThanOrEqual(RSS_LIMIT);
    pushed = { digest };
  }, 300_000);

  it('serves the 1 GiB layer back whole, same digest, still within 200 MB peak RSS', async () => {
    // Prepare
    expect(pushed, 'the push test committed the layer').toBeDefined();
    const hash = createHash('sha256');
    let size = 0;

    // Act
    const started = performance.now();
    const response = await fetch(`${server.url}/v2/team/huge/blobs/${pushed!.digest}`);
    const reader = response.body!.getReader();
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      hash.update(read.value);
      size += read.value.byteLength;
    }
    const ms = performance.now() - started;
    const peak = await server.peakRssBytes();

    // Assess
    expect(response.status).toBe(200);
    expect(size).toBe(GiB);
    expect(`sha256:${hash.digest('hex')}`).toBe(pushed!.digest);
    console.log(JSON.stringify({ metric: 'serve_peak_rss_after_1GiB_pull', peakRssMB: Math.round(peak / 1e6), pullMs: Math.round(ms), MBps: Math.round(GiB / 1e6 / (ms / 1000)) }));
    expect(peak).toBeLessThanOrEqual(RSS_LIMIT);
  }, 300_000);
});

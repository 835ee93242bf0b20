import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addRandomLayer, blobPath, buildRandomImage, MiB, type LayoutImage } from '../support/images.ts';
import { useHubCache } from '../support/pull-cache-target.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { requireTools } from '../support/tools.ts';

/**
 * HEAD and Range requests on pull-through blobs too large to copy within a request, on `dev:aws` (the production
 * handler behind the emulated HTTP API, the copy function run by the local Lambda) with CNCF Distribution
 * (`docker-registry`) on loopback as the upstream. The copy-in-request limit is 2 MiB and both layers are 3 MiB:
 * a HEAD answers the upstream's size while the copy function stores the blob, a Range GET is redirected to the
 * upstream's blob URL (the client sends its Range there), and once copied both are served from S3.
 */

const dirs = tempDirs('ocireg-pull-cache-aws-');
let work: string;
let image: LayoutImage;

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'docker-registry');
  work = await dirs.make();
  await buildRandomImage({ layout: join(work, 'src'), tag: 'app', randomBytes: 3 * MiB });
  image = await addRandomLayer(join(work, 'src'), 'app', 3 * MiB);
}, 120_000);

afterAll(async () => {
  await dirs.cleanUp();
});

describe('pull-through blobs over the copy-in-request limit on dev:aws: HEAD and Range', () => {
  const hub = useHubCache('dev:aws', { dir: () => work, image: () => image, revalidateSeconds: 300, copyInRequestMaxBytes: 2 * MiB });
  const blobUrl = (digest: string) => `${hub.cache.url}/v2/hub/library/app/blobs/${digest}`;
  const head = (digest: string) => fetch(blobUrl(digest), { method: 'HEAD', redirect: 'manual' });
  const rangeGet = (url: string, range: string) => fetch(url, { headers: { range }, redirect: 'manual' });

  it('answers a HEAD of an uncached layer 200 with its size and digest (as the upstream declared them), copying it in the background once', async () => {
    // Prepare
    const layer = image.manifest.layers[0]!;
    expect(layer.size).toBeGreaterThan(2 * MiB);
    expect(await hub.cache.hasBlob(layer.digest)).toBe(false);

    // Act
    const first = await head(layer.digest);
    const second = await head(layer.digest);
    await hub.cache.settled();
    const copied = await head(layer.digest);

    // Assess
    for (const response of [first, second, copied]) {
      expect(response.status).toBe(200);
      expect(response.headers.get('content-length')).toBe(String(layer.size));
      expect(response.headers.get('docker-content-digest')).toBe(layer.digest);
    }
    expect(hub.cache.copyInvocations()).toEqual([{ name: 'hub/library/app', digest: layer.digest }]);
    expect(await hub.cache.hasBlob(layer.digest)).toBe(true);
  });

  it('redirects a Range GET of an uncached layer to the upstream blob URL, which answers the Range; once copied, to S3', async () => {
    // Prepare
    const layer = image.manifest.layers[1]!;
    const bytes = await readFile(blobPath(image.layout, layer.digest));
    const range = 'bytes=1048576-1049599';
    const expected = bytes.subarray(1048576, 1049600);

    // Act
    const missed = await rangeGet(blobUrl(layer.digest), range);
    const fromUpstream = await rangeGet(missed.headers.get('location')!, range);
    const upstreamBytes = Buffer.from(await fromUpstream.arrayBuffer());
    await hub.cache.settled();
    const stored = await rangeGet(blobUrl(layer.digest), range);
    const fromS3 = await rangeGet(stored.headers.get('location')!, range);
    const s3Bytes = Buffer.from(await fromS3.arrayBuffer());

    // Assess
    expect(missed.status).toBe(307);
    expect(missed.headers.get('location')).toBe(`${hub.front.url}/v2/library/app/blobs/${layer.digest}`);
    expect(missed.headers.get('docker-content-digest')).toBe(layer.digest);
    expect(fromUpstream.status).toBe(206);
    expect(upstreamBytes.equals(expected)).toBe(true);
    expect(hub.cache.copyInvocations()).toContainEqual({ name: 'hub/library/app', digest: layer.digest });
    expect(stored.status).toBe(307);
    expect(new URL(stored.headers.get('location')!).hostname).toBe('localhost');
    expect(fromS3.status).toBe(206);
    expect(s3Bytes.equals(expected)).toBe(true);
  });

  it('answers a Range past the end of a layer with 416, and HEAD and GET of a blob the upstream lacks with 404', async () => {
    // Prepare
    const layerSize = image.manifest.layers[0]!.size;
    const absent = `sha256:${'0'.repeat(64)}`;

    // Act
    const past = await rangeGet(blobUrl(image.manifest.layers[0]!.digest), `bytes=${layerSize}-`);
    const headAbsent = await head(absent);
    const getAbsent = await fetch(blobUrl(absent), { redirect: 'manual' });

    // Assess
    expect(past.status).toBe(416);
    expect([headAbsent.status, getAbsent.status]).toEqual([404, 404]);
  });
});

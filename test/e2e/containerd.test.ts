import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, type Containerd } from '../support/containerd.ts';
import { sha256 } from '../support/digests.ts';
import { blobPath, buildRandomImage, fetchBlobDigest, fetchManifest, layoutArchive, MiB, type LayoutImage } from '../support/images.ts';
import { startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { describeFailure, requireTools, type RunResult } from '../support/tools.ts';

/**
 * containerd's `ctr` (POST → one monolithic PUT of the whole blob with `digest` added to the Location) against
 * `ocireg serve`: an imported OCI archive pushes, every blob and the manifest read back by digest, and a fresh
 * namespace pulls the same bytes.
 */

let work: string;
let server: RegistryServer;
let containerd: Containerd;
let image: LayoutImage;

const ok = (result: RunResult) => {
  expect(result.code, `${describeFailure(result)}\ncontainerd log tail:\n${containerd.log().slice(-4000)}`).toBe(0);
  return result;
};

beforeAll(async () => {
  await requireTools('containerd', 'ctr', 'umoci', 'tar');
  work = await mkdtemp(join(tmpdir(), 'ocireg-ctr-'));
  server = await startRegistryServer();
  containerd = await startContainerd();
  image = await buildRandomImage({ layout: join(work, 'layout'), tag: '1', randomBytes: 6 * MiB });
}, 120_000);

afterAll(async () => {
  await containerd?.stop();
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

describe('ctr against ocireg serve', () => {
  const remote = () => `${server.host}/team/ctr:1`;

  it('pushes an imported OCI archive with monolithic PUTs; manifest and every blob read back by digest', async () => {
    // Prepare
    const archive = await layoutArchive(image.layout, join(work, 'image.tar'));
    ok(await containerd.ctr(['images', 'import', '--base-name', 'local/ctr', archive]));
    const listed = ok(await containerd.ctr(['images', 'ls', '-q'])).stdout.split('\n');
    expect(listed).toContain('local/ctr:1');

    // Act
    ok(await containerd.ctr(['images', 'push', '--plain-http', remote(), 'local/ctr:1']));

    // Assess
    const manifest = await fetchManifest(server.url, 'team/ctr', '1');
    expect(manifest.status).toBe(200);
    expect(manifest.digest).toBe(image.manifestDigest);
    expect(manifest.headerDigest).toBe(image.manifestDigest);
    expect(manifest.bytes.equals(image.manifestBytes)).toBe(true);
    for (const blob of image.blobs) {
      expect(await fetchBlobDigest(server.url, 'team/ctr', blob.digest)).toEqual({ status: 200, digest: blob.digest, size: blob.size });
    }
    const steps = server
      .requests()
      .filter((line) => line.name === 'team/ctr' && String(line.operation).startsWith('upload'))
      .map((line) => `${line.operation} ${line.status}`);
    expect(steps).not.toContain('upload.patch 202');
    expect(steps.filter((step) => step === 'upload.put 201')).toHaveLength(image.blobs.length);
  });

  it('pulls the pushed image into a fresh namespace with the same manifest and layer bytes', async () => {
    // Prepare
    const layer = image.manifest.layers[0]!;
    const seen = server.requests().length;

    // Act
    ok(await containerd.ctr(['images', 'pull', '--plain-http', remote()], { namespace: 'fresh' }));

    // Assess
    const listed = ok(await containerd.ctr(['images', 'ls'], { namespace: 'fresh' })).stdout;
    expect(listed).toContain(remote());
    expect(listed).toContain(image.manifestDigest);
    expect(listed).toMatch(/linux\/amd64/);
    const fetched = server
      .requests()
      .slice(seen)
      .filter((line) => line.method === 'GET' && line.status === 200)
      .map((line) => line.path);
    for (const blob of image.blobs) expect(fetched).toContain(`/v2/team/ctr/blobs/${blob.digest}`);
    const manifestBytes = ok(await containerd.ctr(['content', 'get', image.manifestDigest], { namespace: 'fresh' })).stdoutBytes;
    expect(manifestBytes.equals(image.manifestBytes)).toBe(true);
    const pulledLayer = ok(await containerd.ctr(['content', 'get', layer.digest], { namespace: 'fresh' })).stdoutBytes;
    expect(sha256(pulledLayer)).toBe(layer.digest);
    expect(pulledLayer.equals(await readFile(blobPath(image.layout, layer.digest)))).toBe(true);
  });
});

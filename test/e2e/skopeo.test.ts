import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  blobPath,
  buildRandomImage,
  fetchBlobDigest,
  fetchManifest,
  layoutEntry,
  MiB,
  readLayoutImage,
  sameFileBytes,
  writeIndex,
  type LayoutImage,
  type OciIndex,
} from '../support/images.ts';
import { startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { describeFailure, requireTools, runTool } from '../support/tools.ts';

/**
 * skopeo (containers/image: POST 202 → one streamed PATCH → PUT ?digest= 201) against `ocireg serve`: a 20 MiB
 * incompressible layer goes up and comes back bit-identical, tags and inspect read what was pushed, and a
 * multi-arch index survives `copy --all` both ways.
 */

let work: string;
let server: RegistryServer;
let image: LayoutImage;

const skopeo = async (args: string[]) => {
  const result = await runTool('skopeo', args, { timeoutMs: 180_000 });
  expect(result.code, describeFailure(result)).toBe(0);
  return result;
};

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'tar');
  work = await mkdtemp(join(tmpdir(), 'ocireg-skopeo-'));
  server = await startRegistryServer();
  image = await buildRandomImage({ layout: join(work, 'src'), tag: 'big', randomBytes: 20 * MiB });
});

afterAll(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('skopeo against ocireg serve', () => {
  it('pushes a 20 MiB image and copies it back bit for bit, manifest digest included', async () => {
    // Prepare
    const layer = image.manifest.layers[0]!;
    expect(layer.size).toBeGreaterThanOrEqual(20 * MiB);
    const back = join(work, 'back');

    // Act
    const push = await skopeo(['copy', '--dest-tls-verify=false', image.ref, `docker://${server.host}/team/app:1.0`]);
    const pull = await skopeo(['copy', '--src-tls-verify=false', `docker://${server.host}/team/app:1.0`, `oci:${back}:1.0`]);

    // Assess
    const copied = await readLayoutImage(back, '1.0');
    expect(copied.manifestDigest).toBe(image.manifestDigest);
    expect(copied.manifestBytes.equals(image.manifestBytes)).toBe(true);
    expect(copied.blobs.map((blob) => blob.digest)).toEqual(image.blobs.map((blob) => blob.digest));
    for (const blob of image.blobs) {
      expect(await sameFileBytes(blobPath(image.layout, blob.digest), blobPath(back, blob.digest)), `blob ${blob.digest}`).toBe(true);
    }
    const uploadSteps = server
      .requests()
      .filter((line) => line.name === 'team/app' && String(line.operation).startsWith('upload'))
      .map((line) => `${line.operation} ${line.status}`);
    expect(uploadSteps.slice(0, 3)).toEqual(['uploads.post 202', 'upload.patch 202', 'upload.put 201']);
    const served = await fetchBlobDigest(server.url, 'team/app', layer.digest);
    expect(served).toEqual({ status: 200, digest: layer.digest, size: layer.size });
    console.log(JSON.stringify({ metric: 'skopeo_push_ms', ms: push.ms, layerBytes: layer.size, client: 'skopeo', server: 'ocireg serve' }));
    console.log(JSON.stringify({ metric: 'skopeo_pull_ms', ms: pull.ms, layerBytes: layer.size, client: 'skopeo', server: 'ocireg serve' }));
  });

  it('inspect reports the pushed digest and layers; list-tags lists every tag pushed', async () => {
    // Prepare
    await skopeo(['copy', '--dest-tls-verify=false', image.ref, `docker://${server.host}/team/app:1.0`]);
    await skopeo(['copy', '--dest-tls-verify=false', image.ref, `docker://${server.host}/team/app:latest`]);

    // Act
    const inspect = JSON.parse((await skopeo(['inspect', '--tls-verify=false', `docker://${server.host}/team/app:1.0`])).stdout) as { Digest: string; Layers: string[] };
    const raw = (await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${server.host}/team/app:1.0`])).stdout;
    const tags = JSON.parse((await skopeo(['list-tags', '--tls-verify=false', `docker://${server.host}/team/app`])).stdout) as { Repository: string; Tags: string[] };

    // Assess
    expect(inspect.Digest).toBe(image.manifestDigest);
    expect(inspect.Layers).toEqual(image.manifest.layers.map((layer) => layer.digest));
    expect(Buffer.from(raw).equals(image.manifestBytes)).toBe(true);
    expect(tags.Repository).toBe(`${server.host}/team/app`);
    expect([...tags.Tags].sort()).toEqual(['1.0', 'latest']);
  });

  it('copies a multi-arch index with --all and reads the same index and both images back', async () => {
    // Prepare
    const layout = join(work, 'multi');
    const amd64 = await buildRandomImage({ layout, tag: 'amd64', randomBytes: MiB, architecture: 'amd64' });
    const arm64 = await buildRandomImage({ layout, tag: 'arm64', randomBytes: MiB, architecture: 'arm64' });
    const index = await writeIndex(layout, 'multi', [amd64, arm64]);
    const back = join(work, 'multi-back');

    // Act
    await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${layout}:multi`, `docker://${server.host}/team/multi:1`]);
    const served = await fetchManifest(server.url, 'team/multi', '1', 'application/vnd.oci.image.index.v1+json');
    await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${server.host}/team/multi:1`, `oci:${back}:multi`]);

    // Assess
    expect(served.status).toBe(200);
    expect(served.contentType).toBe('application/vnd.oci.image.index.v1+json');
    expect(served.headerDigest).toBe(index.digest);
    expect(served.digest).toBe(index.digest);
    const platforms = (JSON.parse(served.bytes.toString()) as OciIndex).manifests.map((entry) => entry.platform?.architecture);
    expect(platforms).toEqual(['amd64', 'arm64']);
    for (const child of [amd64, arm64]) {
      const byDigest = await fetchManifest(server.url, 'team/multi', child.manifestDigest);
      expect(byDigest.status).toBe(200);
      expect(byDigest.bytes.equals(child.manifestBytes)).toBe(true);
      for (const blob of child.blobs) {
        expect(await sameFileBytes(blobPath(layout, blob.digest), blobPath(back, blob.digest)), `blob ${blob.digest}`).toBe(true);
      }
    }
    const copied = await layoutEntry(back, 'multi');
    expect(copied.digest).toBe(index.digest);
    expect(await sameFileBytes(blobPath(layout, index.digest), blobPath(back, index.digest))).toBe(true);
  });
});

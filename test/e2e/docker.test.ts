import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../support/digests.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { fetchBlobDigest, fetchManifest, MiB, randomTarball } from '../support/images.ts';
import { startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { describeFailure, requireTools, type RunResult } from '../support/tools.ts';

/**
 * docker (classic store: POST → one PATCH of the whole layer → PUT ?digest=) against `ocireg serve`: an imported
 * image pushes, pulls back to the same image ID and layer, and a second repository gets its blobs by cross-repo
 * mount.
 */

interface Docker2Manifest {
  mediaType: string;
  config: { digest: string; size: number };
  layers: Array<{ mediaType: string; digest: string; size: number }>;
}

let work: string;
let server: RegistryServer;
let dockerd: Dockerd;
let tarball: { path: string; digest: string; size: number };

const ok = (result: RunResult) => {
  expect(result.code, `${describeFailure(result)}\ndockerd log tail:\n${dockerd.log().slice(-4000)}`).toBe(0);
  return result;
};
const docker = async (args: string[]) => ok(await dockerd.docker(args, { timeoutMs: 180_000 }));
const inspect = async (ref: string, format: string) => (await docker(['image', 'inspect', '--format', format, ref])).stdout.trim();

beforeAll(async () => {
  await requireTools('docker', 'dockerd', 'tar');
  work = await mkdtemp(join(tmpdir(), 'ocireg-docker-'));
  server = await startRegistryServer();
  dockerd = await startDockerd({ insecureRegistries: [server.host] });
  tarball = await randomTarball(join(work, 'payload.tar'), 8 * MiB);
}, 120_000);

afterAll(async () => {
  await dockerd?.stop();
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

describe('docker against ocireg serve', () => {
  const ref = () => `${server.host}/team/docker:1`;

  it('pushes an imported image, pulls it back after rmi, same image ID and layer', async () => {
    // Prepare
    await docker(['import', tarball.path, 'ocireg-e2e/random:src']);
    await docker(['tag', 'ocireg-e2e/random:src', ref()]);
    const imageId = await inspect(ref(), '{{.Id}}');
    const diffIds = await inspect(ref(), '{{json .RootFS.Layers}}');
    expect(JSON.parse(diffIds)).toEqual([tarball.digest]);

    // Act
    await docker(['push', ref()]);
    await docker(['rmi', ref(), 'ocireg-e2e/random:src']);
    const gone = await dockerd.docker(['image', 'inspect', ref()]);
    const pull = await docker(['pull', ref()]);

    // Assess
    expect(gone.code).not.toBe(0);
    expect(pull.stdout).toMatch(/Downloaded newer image/);
    expect(await inspect(ref(), '{{.Id}}')).toBe(imageId);
    expect(await inspect(ref(), '{{json .RootFS.Layers}}')).toBe(diffIds);

    const manifest = await fetchManifest(server.url, 'team/docker', '1');
    expect(manifest.status).toBe(200);
    expect(manifest.contentType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(manifest.headerDigest).toBe(manifest.digest);
    const parsed = JSON.parse(manifest.bytes.toString()) as Docker2Manifest;
    expect(parsed.config.digest).toBe(imageId);
    expect(await inspect(ref(), '{{index .RepoDigests 0}}')).toBe(`${server.host}/team/docker@${manifest.digest}`);
    const layer = parsed.layers[0]!;
    const layerResponse = await fetch(`${server.url}/v2/team/docker/blobs/${layer.digest}`);
    const compressed = Buffer.from(await layerResponse.arrayBuffer());
    expect(sha256(compressed)).toBe(layer.digest);
    expect(sha256(gunzipSync(compressed))).toBe(tarball.digest);
    const patches = server.requests().filter((line) => line.name === 'team/docker' && line.operation === 'upload.patch');
    expect(patches.length).toBeGreaterThan(0);
  });

  it('pushes the same image to a second repository by cross-repository mount', async () => {
    // Prepare
    const other = `${server.host}/other/docker:1`;
    await docker(['tag', ref(), other]);
    const manifest = JSON.parse((await fetchManifest(server.url, 'team/docker', '1')).bytes.toString()) as Docker2Manifest;
    const layer = manifest.layers[0]!;
    const before = await fetch(`${server.url}/v2/other/docker/blobs/${layer.digest}`, { method: 'HEAD' });
    const uploadsBefore = server.requests().length;

    // Act
    const push = await docker(['push', other]);

    // Assess
    expect(before.status).toBe(404);
    expect(push.stdout).toMatch(/Mounted from team\/docker/);
    const newRequests = server.requests().slice(uploadsBefore);
    // docker mounts layers only; the config (a few hundred bytes) is uploaded again.
    expect(newRequests.filter((line) => line.name === 'other/docker' && line.operation === 'upload.patch').length).toBeLessThanOrEqual(1);
    expect(newRequests.some((line) => line.name === 'other/docker' && line.operation === 'uploads.post' && line.status === 201)).toBe(true);
    for (const blob of [manifest.config, layer]) {
      const head = await fetch(`${server.url}/v2/other/docker/blobs/${blob.digest}`, { method: 'HEAD' });
      expect(head.status, blob.digest).toBe(200);
      expect(head.headers.get('docker-content-digest')).toBe(blob.digest);
      expect(await fetchBlobDigest(server.url, 'other/docker', blob.digest)).toEqual({ status: 200, digest: blob.digest, size: blob.size });
    }
    expect((await fetchManifest(server.url, 'other/docker', '1')).digest).toBe((await fetchManifest(server.url, 'team/docker', '1')).digest);
  });
});

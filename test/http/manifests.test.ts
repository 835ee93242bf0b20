import { describe, expect, it } from 'vitest';
import { MediaType } from '../../lib/registry/manifest.ts';
import { memoryRegistry } from '../support/app-client.ts';
import { artifactManifest, EMPTY_CONFIG, imageIndex, imageManifest, manifestOf, randomBlob, type Blob } from '../support/builders.ts';

async function withBlobs(name: string, ...blobs: Blob[]) {
  const registry = memoryRegistry();
  for (const blob of blobs) {
    const response = await registry.call('POST', `/v2/${name}/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes });
    expect(response.status).toBe(201);
  }
  return registry;
}

describe('manifests', () => {
  it('stores an image manifest by tag and serves it by tag and digest with its exact bytes', async () => {
    const [config, layer] = [randomBlob(100), randomBlob(1000)];
    const { call } = await withBlobs('team/app', config, layer);
    const manifest = imageManifest(config, [layer]);
    const put = await call('PUT', '/v2/team/app/manifests/1.0', { body: manifest.bytes, headers: { 'content-type': MediaType.ociManifest } });
    expect(put.status).toBe(201);
    expect(put.headers['docker-content-digest']).toBe(manifest.digest);
    expect(put.headers.location).toBe(`/v2/team/app/manifests/${manifest.digest}`);
    for (const reference of ['1.0', manifest.digest]) {
      const got = await call('GET', `/v2/team/app/manifests/${reference}`, { headers: { accept: MediaType.ociManifest } });
      expect(got.status).toBe(200);
      expect(got.body).toEqual(manifest.bytes);
      expect(got.headers['content-type']).toBe(MediaType.ociManifest);
      expect(got.headers['docker-content-digest']).toBe(manifest.digest);
      const head = await call('HEAD', `/v2/team/app/manifests/${reference}`);
      expect(head.status).toBe(200);
      expect(head.headers['content-length']).toBe(String(manifest.bytes.byteLength));
      expect(head.body.byteLength).toBe(0);
    }
  });

  it('accepts Docker schema 2 manifests and manifest lists', async () => {
    const [config, layer] = [randomBlob(100), randomBlob(1000)];
    const { call } = await withBlobs('team/docker', config, layer);
    const manifest = manifestOf(
      {
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: config.digest, size: config.size },
        layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: layer.digest, size: layer.size }],
      },
      MediaType.dockerManifest,
    );
    expect((await call('PUT', `/v2/team/docker/manifests/${manifest.digest}`, { body: manifest.bytes, headers: { 'content-type': MediaType.dockerManifest } })).status).toBe(201);
    const list = manifestOf(
      { schemaVersion: 2, mediaType: MediaType.dockerManifestList, manifests: [{ ...manifest.descriptor, platform: { architecture: 'amd64', os: 'linux' } }] },
      MediaType.dockerManifestList,
    );
    const put = await call('PUT', '/v2/team/docker/manifests/multi', { body: list.bytes, headers: { 'content-type': MediaType.dockerManifestList } });
    expect(put.status).toBe(201);
    expect((await call('GET', '/v2/team/docker/manifests/multi')).headers['content-type']).toBe(MediaType.dockerManifestList);
  });

  it('stores a multi-arch index whose children are in the repository', async () => {
    const [config, a, b] = [randomBlob(50), randomBlob(500), randomBlob(600)];
    const { call } = await withBlobs('team/multi', config, a, b);
    const amd64 = imageManifest(config, [a]);
    const arm64 = imageManifest(config, [b]);
    for (const child of [amd64, arm64]) {
      await call('PUT', `/v2/team/multi/manifests/${child.digest}`, { body: child.bytes, headers: { 'content-type': child.mediaType } });
    }
    const index = imageIndex([amd64, arm64]);
    const put = await call('PUT', '/v2/team/multi/manifests/latest', { body: index.bytes, headers: { 'content-type': MediaType.ociIndex } });
    expect(put.status).toBe(201);
    expect((await call('GET', '/v2/team/multi/manifests/latest')).json().manifests).toHaveLength(2);
  });

  it('refuses an index whose child manifest is not in the repository with MANIFEST_BLOB_UNKNOWN', async () => {
    const [config, a] = [randomBlob(50), randomBlob(500)];
    const { call } = await withBlobs('team/multi', config, a);
    const index = imageIndex([imageManifest(config, [a])]);
    const put = await call('PUT', '/v2/team/multi/manifests/latest', { body: index.bytes, headers: { 'content-type': MediaType.ociIndex } });
    expect(put.status).toBe(400);
    expect(put.json().errors[0].code).toBe('MANIFEST_BLOB_UNKNOWN');
  });

  it('refuses a manifest referencing a blob the repository lacks with MANIFEST_BLOB_UNKNOWN', async () => {
    const [config, layer] = [randomBlob(100), randomBlob(1000)];
    const { call } = await withBlobs('team/app', config);
    const manifest = imageManifest(config, [layer]);
    const put = await call('PUT', '/v2/team/app/manifests/1.0', { body: manifest.bytes, headers: { 'content-type': MediaType.ociManifest } });
    expect(put.status).toBe(400);
    expect(put.json().errors[0]).toMatchObject({ code: 'MANIFEST_BLOB_UNKNOWN', detail: { digest: layer.digest } });
    expect((await call('GET', '/v2/team/app/manifests/1.0')).status).toBe(404);
  });

  it('does not accept a blob of another repository as a manifest reference', async () => {
    const [config, layer] = [randomBlob(100), randomBlob(1000)];
    const { call } = await withBlobs('team/other', config, layer);
    const manifest = imageManifest(config, [layer]);
    const put = await call('PUT', '/v2/team/app/manifests/1.0', { body: manifest.bytes, headers: { 'content-type': MediaType.ociManifest } });
    expect(put.status).toBe(400);
  });

  it.each([
    ['broken JSON', '{"schemaVersion": 2,', MediaType.ociManifest],
    ['a JSON array', '[]', MediaType.ociManifest],
    ['schema version 1', JSON.stringify({ schemaVersion: 1, config: {}, layers: [] }), MediaType.ociManifest],
    ['layers that are not an array', JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: 'a/b', digest: `sha256:${'0'.repeat(64)}`, size: 1 }, layers: {} }), MediaType.ociManifest],
    ['a descriptor with a bad digest', JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: 'a/b', digest: 'sha256:xyz', size: 1 }, layers: [] }), MediaType.ociManifest],
    ['a negative size', JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: 'a/b', digest: `sha256:${'0'.repeat(64)}`, size: -1 }, layers: [] }), MediaType.ociManifest],
    ['a Content-Type that contradicts mediaType', JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }), MediaType.ociManifest],
    ['an unknown media type', JSON.stringify({ schemaVersion: 2, mediaType: 'application/x-unknown', layers: [] }), 'application/x-unknown'],
  ])('refuses %s with 400 MANIFEST_INVALID', async (_label, body, contentType) => {
    const { call } = memoryRegistry();
    const put = await call('PUT', '/v2/team/app/manifests/bad', { body, headers: { 'content-type': contentType } });
    expect(put.status).toBe(400);
    expect(put.json().errors[0].code).toBe('MANIFEST_INVALID');
  });

  it('refuses a manifest put by a digest that does not match its content', async () => {
    const config = randomBlob(10);
    const { call } = await withBlobs('team/app', config);
    const manifest = imageManifest(config, []);
    const put = await call('PUT', `/v2/team/app/manifests/sha256:${'1'.repeat(64)}`, { body: manifest.bytes, headers: { 'content-type': MediaType.ociManifest } });
    expect(put.status).toBe(400);
    expect(put.json().errors[0].code).toBe('DIGEST_INVALID');
  });

  it('refuses an invalid tag', async () => {
    const config = randomBlob(10);
    const { call } = await withBlobs('team/app', config);
    const manifest = imageManifest(config, []);
    const put = await call('PUT', `/v2/team/app/manifests/-bad`, { body: manifest.bytes, headers: { 'content-type': MediaType.ociManifest } });
    expect(put.status).toBe(400);
  });

  it('refuses a manifest over 4 MiB with 413', async () => {
    const { call } = memoryRegistry();
    const put = await call('PUT', '/v2/team/app/manifests/huge', { body: Buffer.alloc(4 * 1024 * 1024 + 1, 0x20), headers: { 'content-type': MediaType.ociManifest } });
    expect(put.status).toBe(413);
    expect(put.json().errors[0].code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('refuses a streamed manifest (no Content-Length) once it passes 4 MiB, with the limit in the detail', async () => {
    const { call } = memoryRegistry();
    const put = await call('PUT', '/v2/team/app/manifests/huge', { body: Buffer.alloc(4 * 1024 * 1024 + 1, 0x20), chunked: true, headers: { 'content-type': MediaType.ociManifest } });
    expect(put.status).toBe(413);
    expect(put.json().errors[0]).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', detail: { max: 4 * 1024 * 1024 } });
  });

  it('answers 404 MANIFEST_UNKNOWN for an unknown tag or digest', async () => {
    const { call } = memoryRegistry();
    for (const reference of ['nope', `sha256:${'a'.repeat(64)}`]) {
      const response = await call('GET', `/v2/team/app/manifests/${reference}`);
      expect(response.status).toBe(404);
      expect(response.json().errors[0].code).toBe('MANIFEST_UNKNOWN');
    }
  });

  it('answers an artifact with a subject with OCI-Subject, even when the subject is not pushed yet', async () => {
    const config = randomBlob(10);
    const { call } = await withBlobs('team/app', EMPTY_CONFIG, config);
    const subject = imageManifest(config, []);
    const artifact = artifactManifest(subject, 'application/vnd.example.sbom');
    const put = await call('PUT', `/v2/team/app/manifests/${artifact.digest}`, { body: artifact.bytes, headers: { 'content-type': MediaType.ociManifest } });
    expect(put.status).toBe(201);
    expect(put.headers['oci-subject']).toBe(subject.digest);
  });

  it('deletes by tag (202, the tag only) and by digest (202, the manifest and its tags)', async () => {
    const config = randomBlob(10);
    const { call } = await withBlobs('team/app', config);
    const manifest = imageManifest(config, []);
    await call('PUT', '/v2/team/app/manifests/a', { body: manifest.bytes, headers: { 'content-type': MediaType.ociManifest } });
    await call('PUT', '/v2/team/app/manifests/b', { body: manifest.bytes, headers: { 'content-type': MediaType.ociManifest } });
    expect((await call('DELETE', '/v2/team/app/manifests/a')).status).toBe(202);
    expect((await call('GET', '/v2/team/app/manifests/a')).status).toBe(404);
    expect((await call('GET', `/v2/team/app/manifests/${manifest.digest}`)).status).toBe(200);
    expect((await call('DELETE', `/v2/team/app/manifests/${manifest.digest}`)).status).toBe(202);
    expect((await call('GET', '/v2/team/app/manifests/b')).status).toBe(404);
    expect((await call('GET', `/v2/team/app/manifests/${manifest.digest}`)).status).toBe(404);
    expect((await call('DELETE', `/v2/team/app/manifests/${manifest.digest}`)).status).toBe(404);
  });
});

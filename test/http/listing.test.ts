import { describe, expect, it } from 'vitest';
import { MediaType } from '../../lib/registry/manifest.ts';
import { memoryRegistry } from '../support/app-client.ts';
import { artifactManifest, EMPTY_CONFIG, imageManifest, randomBlob } from '../support/builders.ts';

async function pushImage(call: ReturnType<typeof memoryRegistry>['call'], name: string, tags: string[]) {
  const config = randomBlob(20);
  await call('POST', `/v2/${name}/blobs/uploads/?digest=${config.digest}`, { body: config.bytes });
  const manifest = imageManifest(config, []);
  for (const tag of tags) {
    const put = await call('PUT', `/v2/${name}/manifests/${tag}`, { body: manifest.bytes, headers: { 'content-type': MediaType.ociManifest } });
    expect(put.status).toBe(201);
  }
  return manifest;
}

describe('tags list', () => {
  it('lists all tags in lexical order', async () => {
    const { call } = memoryRegistry();
    await pushImage(call, 'team/app', ['v2', 'latest', 'v1', 'V0']);
    const response = await call('GET', '/v2/team/app/tags/list');
    expect(response.status).toBe(200);
    expect(response.json()).toEqual({ name: 'team/app', tags: ['V0', 'latest', 'v1', 'v2'] });
    expect(response.headers.link).toBeUndefined();
  });

  it('pages with n and last, and links the next page with angle brackets', async () => {
    const { call } = memoryRegistry();
    await pushImage(call, 'team/app', ['a', 'b', 'c', 'd', 'e']);
    const first = await call('GET', '/v2/team/app/tags/list?n=2');
    expect(first.json().tags).toEqual(['a', 'b']);
    expect(first.headers.link).toBe('</v2/team/app/tags/list?n=2&last=b>; rel="next"');
    const second = await call('GET', first.headers.link!.slice(1, first.headers.link!.indexOf('>')));
    expect(second.json().tags).toEqual(['c', 'd']);
    const third = await call('GET', '/v2/team/app/tags/list?n=2&last=d');
    expect(third.json().tags).toEqual(['e']);
    expect(third.headers.link).toBeUndefined();
    expect((await call('GET', '/v2/team/app/tags/list?last=c')).json().tags).toEqual(['d', 'e']);
    expect((await call('GET', '/v2/team/app/tags/list?n=0')).json().tags).toEqual([]);
  });

  it('refuses a malformed n with 400', async () => {
    const { call } = memoryRegistry();
    await pushImage(call, 'team/app', ['a']);
    const response = await call('GET', '/v2/team/app/tags/list?n=-1');
    expect(response.status).toBe(400);
    expect(response.json().errors[0].code).toBe('PAGINATION_NUMBER_INVALID');
  });

  it('answers 404 NAME_UNKNOWN for a repository without manifests', async () => {
    const { call } = memoryRegistry();
    const response = await call('GET', '/v2/team/none/tags/list');
    expect(response.status).toBe(404);
    expect(response.json().errors[0].code).toBe('NAME_UNKNOWN');
  });
});

describe('catalog', () => {
  it('lists repositories with pagination', async () => {
    const { call } = memoryRegistry();
    for (const name of ['b/one', 'a', 'c/deep/name']) await pushImage(call, name, ['t']);
    expect((await call('GET', '/v2/_catalog')).json()).toEqual({ repositories: ['a', 'b/one', 'c/deep/name'] });
    const page = await call('GET', '/v2/_catalog?n=1&last=a');
    expect(page.json()).toEqual({ repositories: ['b/one'] });
    expect(page.headers.link).toBe('</v2/_catalog?n=1&last=b%2Fone>; rel="next"');
  });
});

describe('referrers', () => {
  it('lists the manifests whose subject is a digest, as an image index', async () => {
    const { call } = memoryRegistry();
    await call('POST', `/v2/team/app/blobs/uploads/?digest=${EMPTY_CONFIG.digest}`, { body: EMPTY_CONFIG.bytes });
    const subject = await pushImage(call, 'team/app', ['1.0']);
    const sbom = artifactManifest(subject, 'application/vnd.example.sbom');
    const signature = artifactManifest(subject, 'application/vnd.example.signature');
    for (const artifact of [sbom, signature]) {
      await call('PUT', `/v2/team/app/manifests/${artifact.digest}`, { body: artifact.bytes, headers: { 'content-type': MediaType.ociManifest } });
    }
    const response = await call('GET', `/v2/team/app/referrers/${subject.digest}`);
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe(MediaType.ociIndex);
    const index = response.json();
    expect(index).toMatchObject({ schemaVersion: 2, mediaType: MediaType.ociIndex });
    expect(index.manifests).toHaveLength(2);
    expect(index.manifests).toContainEqual({
      mediaType: MediaType.ociManifest,
      digest: sbom.digest,
      size: sbom.bytes.byteLength,
      artifactType: 'application/vnd.example.sbom',
      annotations: { 'org.opencontainers.image.created': '2026-11-23T00:00:00Z' },
    });
    expect(response.headers['oci-filters-applied']).toBeUndefined();

    const filtered = await call('GET', `/v2/team/app/referrers/${subject.digest}?artifactType=application/vnd.example.signature`);
    expect(filtered.headers['oci-filters-applied']).toBe('artifactType');
    expect(filtered.json().manifests.map((m: { digest: string }) => m.digest)).toEqual([signature.digest]);
  });

  it('answers 200 with an empty index for an unknown subject or repository, never 404', async () => {
    const { call } = memoryRegistry();
    const response = await call('GET', `/v2/team/none/referrers/sha256:${'b'.repeat(64)}`);
    expect(response.status).toBe(200);
    expect(response.json()).toEqual({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });
  });

  it('answers 400 for a malformed digest', async () => {
    const { call } = memoryRegistry();
    expect((await call('GET', '/v2/team/app/referrers/sha256:zz')).status).toBe(400);
  });
});

import { describe, expect, it } from 'vitest';
import { MediaType, parseManifest } from '../../lib/registry/manifest.ts';
import { artifactManifest, imageManifest, randomBlob } from '../support/builders.ts';

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe('parseManifest', () => {
  it('lists the config and layers of an image manifest as required blobs', () => {
    const [config, a, b] = [randomBlob(1), randomBlob(2), randomBlob(3)];
    const parsed = parseManifest(imageManifest(config, [a, b]).bytes, MediaType.ociManifest);
    expect(parsed.blobs).toEqual([config.digest, a.digest, b.digest]);
    expect(parsed.artifactType).toBe('application/vnd.oci.image.config.v1+json');
  });

  it('does not require non-distributable layers to be stored', () => {
    const config = randomBlob(1);
    const foreign = { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: randomBlob(1).digest, size: 1, urls: ['https://example/x'] };
    const parsed = parseManifest(encode({ schemaVersion: 2, mediaType: MediaType.dockerManifest, config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: config.digest, size: 1 }, layers: [foreign] }), undefined);
    expect(parsed.blobs).toEqual([config.digest]);
  });

  it('takes the artifact type and subject of an artifact', () => {
    const subject = imageManifest(randomBlob(1), []);
    const parsed = parseManifest(artifactManifest(subject, 'application/x-sig').bytes, MediaType.ociManifest);
    expect(parsed.subject).toBe(subject.digest);
    expect(parsed.artifactType).toBe('application/x-sig');
  });

  it('infers the media type from the body when the Content-Type is generic', () => {
    const parsed = parseManifest(encode({ schemaVersion: 2, manifests: [] }), 'application/octet-stream');
    expect(parsed.mediaType).toBe(MediaType.ociIndex);
  });

  it('ignores Content-Type parameters', () => {
    const parsed = parseManifest(encode({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }), `${MediaType.ociIndex}; charset=utf-8`);
    expect(parsed.mediaType).toBe(MediaType.ociIndex);
  });

  it('refuses bytes that are not UTF-8', () => {
    expect(() => parseManifest(new Uint8Array([0xff, 0xfe, 0x7b]), MediaType.ociManifest)).toThrowError(/not valid JSON/);
  });
});

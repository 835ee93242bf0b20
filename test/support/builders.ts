import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { BlobContent } from '../../lib/client/blob-uploader.ts';
import { MediaType } from '../../lib/registry/manifest.ts';
import type { Descriptor } from '../../lib/registry/types.ts';
import { sha256 } from './digests.ts';

export interface Blob {
  bytes: Buffer;
  digest: string;
  size: number;
}

/** `size` fresh random bytes with their digest: content no registry or cache has seen. */
export function randomBlob(size = 1024): Blob {
  return blobOf(randomBytes(size));
}

export function blobOf(content: string | Uint8Array): Blob {
  const bytes = Buffer.from(content);
  return { bytes, digest: sha256(bytes), size: bytes.byteLength };
}

/** A blob as the client's uploader reads it: `open(start, end)` streams the inclusive byte range. */
export function blobContent(blob: Blob): BlobContent & Blob {
  return { ...blob, open: (start, end) => Readable.from([blob.bytes.subarray(start, end + 1)]) };
}

export interface ManifestDoc {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  descriptor: Descriptor;
}

export function manifestOf(value: unknown, mediaType: string): ManifestDoc {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = sha256(bytes);
  return { bytes, digest, mediaType, descriptor: { mediaType, digest, size: bytes.byteLength } };
}

/** An OCI image manifest (with real digests) over a config and layers. */
export function imageManifest(config: Blob, layers: Blob[], extra: Record<string, unknown> = {}): ManifestDoc {
  return manifestOf(
    {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
      layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size })),
      ...extra,
    },
    MediaType.ociManifest,
  );
}

export function imageIndex(children: ManifestDoc[], extra: Record<string, unknown> = {}): ManifestDoc {
  return manifestOf(
    {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: children.map((child, i) => ({ ...child.descriptor, platform: { architecture: i === 0 ? 'amd64' : 'arm64', os: 'linux' } })),
      ...extra,
    },
    MediaType.ociIndex,
  );
}

/** The OCI empty descriptor's content: `{}`. */
export const EMPTY_CONFIG = blobOf('{}');

/** An OCI artifact manifest (empty config) pointing at `subject`. */
export function artifactManifest(subject: ManifestDoc, artifactType: string, layers: Blob[] = [EMPTY_CONFIG]): ManifestDoc {
  return manifestOf(
    {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY_CONFIG.digest, size: EMPTY_CONFIG.size },
      layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.empty.v1+json', digest: layer.digest, size: layer.size })),
      subject: subject.descriptor,
      annotations: { 'org.opencontainers.image.created': '2026-11-23T00:00:00Z' },
    },
    MediaType.ociManifest,
  );
}

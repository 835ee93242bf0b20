import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from './digests.ts';

/** Writes OCI image layouts and `docker save`-shaped directories with real digests, for the source readers. */

export interface WrittenImage {
  manifestDigest: string;
  manifestBytes: Buffer;
  configDigest: string;
  layerDigests: string[];
}

async function putBlob(dir: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
  return digest;
}

/** An OCI layout with one image per tag (each: a config and the given layers), in `index.json`. */
export async function writeOciLayout(dir: string, images: Record<string, Buffer[]>): Promise<Record<string, WrittenImage>> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const written: Record<string, WrittenImage> = {};
  const entries = [];
  for (const [tag, layers] of Object.entries(images)) {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map(sha256) }, tag }));
    const configDigest = await putBlob(dir, config);
    const layerDigests = [];
    for (const layer of layers) layerDigests.push(await putBlob(dir, layer));
    const manifestBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.byteLength },
        layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.byteLength })),
      }),
    );
    const manifestDigest = await putBlob(dir, manifestBytes);
    entries.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifestBytes.byteLength, annotations: { 'org.opencontainers.image.ref.name': tag } });
    written[tag] = { manifestDigest, manifestBytes, configDigest, layerDigests };
  }
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: entries }));
  return written;
}

/** Adds an index over two existing images under `tag`, as a multi-platform image. */
export async function addIndex(dir: string, tag: string, children: WrittenImage[]): Promise<string> {
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: children.map((child, i) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: child.manifestDigest, size: child.manifestBytes.byteLength, platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' } })),
    }),
  );
  const digest = await putBlob(dir, index);
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest, size: index.byteLength, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
  );
  return digest;
}

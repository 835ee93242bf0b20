import { execFile } from 'node:child_process';
import { digestOf } from '../registry/digest.ts';
import { MediaType } from '../registry/manifest.ts';
import type { Descriptor } from '../registry/types.ts';
import { hashRegion, readRegion, sourceOfRegions, type FileRegion, type Files } from './file-region.ts';
import type { ImageSource, ManifestNode } from './image-source.ts';
import { normalizeTarPath } from './tar-reader.ts';

interface DockerArchiveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/**
 * `docker save` output as a Docker schema 2 manifest. Layers are often uncompressed tars there (schema 2 allows
 * `…rootfs.diff.tar`), so nothing is recompressed and the layer digests equal the config's diff_ids: docker computes
 * the same image ID after a pull. Digests are computed by streaming each layer once, unless the archive already
 * names it by digest (`blobs/sha256/<hex>`, docker ≥ 25). A zstd layer has no Docker media type: the manifest is
 * then an OCI manifest.
 */
export async function dockerArchiveSource(description: string, files: Files, reference: string | undefined, close: () => Promise<void>): Promise<ImageSource> {
  try {
    const manifestRegion = await files.find('manifest.json');
    if (!manifestRegion) throw new Error(`${files.what} is not docker save output: no manifest.json`);
    const entries = JSON.parse((await readRegion(manifestRegion)).toString('utf8')) as DockerArchiveEntry[];
    if (!Array.isArray(entries) || entries.length === 0) throw new Error(`${files.what}: manifest.json lists no image`);
    const tags = entries.flatMap((entry) => entry.RepoTags ?? []);
    let entry: DockerArchiveEntry | undefined;
    if (reference !== undefined) {
      entry = entries.find((candidate) => (candidate.RepoTags ?? []).some((tag) => tag === reference || tag === `${reference}:latest` || tag === `docker.io/${reference}` || tag === `docker.io/library/${reference}`));
      if (!entry && entries.length === 1) entry = entries[0];
      if (!entry) throw new Error(`${files.what} has no image "${reference}"; it has: ${tags.join(', ')}`);
    } else if (entries.length === 1) {
      entry = entries[0];
    } else {
      throw new Error(`${files.what} holds ${entries.length} images: name one (${description}:<repo:tag>); it has: ${tags.join(', ')}`);
    }

    const regions = new Map<string, FileRegion>();
    const find = async (path: string, what: string) => {
      const region = await files.find(path);
      if (!region) throw new Error(`${files.what} lacks ${what} ${path}`);
      return region;
    };
    const configRegion = await find(entry!.Config, 'the config');
    const configBytes = await readRegion(configRegion);
    const configDigest = digestOf(configBytes);
    regions.set(configDigest, configRegion);

    const layers: Array<{ digest: string; size: number; compression: Compression }> = [];
    for (const path of entry!.Layers) {
      const region = await find(path, 'the layer');
      const named = /(?:^|\/)blobs\/sha256\/([a-f0-9]{64})$/.exec(normalizeTarPath(path));
      const digest = named ? `sha256:${named[1]}` : await hashRegion(region);
      regions.set(digest, region);
      layers.push({ digest, size: region.size, compression: await compressionOf(region) });
    }

    const oci = layers.some((layer) => layer.compression === 'zstd');
    const layerType = (compression: Compression) =>
      oci ? { none: MediaType.ociLayer, gzip: MediaType.ociLayerGzip, zstd: MediaType.ociLayerZstd }[compression] : compression === 'gzip' ? MediaType.dockerLayerGzip : MediaType.dockerLayer;
    const config: Descriptor = { mediaType: oci ? MediaType.ociConfig : MediaType.dockerConfig, digest: configDigest, size: configBytes.byteLength };
    const layerDescriptors = layers.map((layer) => ({ mediaType: layerType(layer.compression), digest: layer.digest, size: layer.size }));
    const mediaType = oci ? MediaType.ociManifest : MediaType.dockerManifest;
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, config, layers: layerDescriptors }, null, 3));
    const root: ManifestNode = {
      descriptor: { mediaType, digest: digestOf(bytes), size: bytes.byteLength },
      bytes,
      config,
      layers: layerDescriptors,
      children: [],
    };
    return sourceOfRegions(description, root, regions, close);
  } catch (error) {
    await close();
    throw error;
  }
}

type Compression = 'none' | 'gzip' | 'zstd';

async function compressionOf(region: FileRegion): Promise<Compression> {
  if (region.size < 4) return 'none';
  const head = await readRegion({ ...region, size: 4 });
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** `docker save IMAGE` into `file` through the docker CLI, so DOCKER_HOST and the CLI's context apply. */
export function dockerSave(command: string, image: string, file: string, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, ['save', '--output', file, image], { env, maxBuffer: 1024 * 1024 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const reason = (error as { code?: string | number }).code === 'ENOENT' ? `${command} is not installed` : stderr.trim() || error.message;
      reject(new Error(`docker save ${image} failed${env.DOCKER_HOST ? ` (DOCKER_HOST=${env.DOCKER_HOST})` : ''}: ${reason}`));
    });
  });
}

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, stat, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { digestOf } from '../registry/digest.ts';
import { MediaType } from '../registry/manifest.ts';
import type { Descriptor } from '../registry/types.ts';
import type { BlobContent } from './blob-uploader.ts';
import { normalizeTarPath, readTarIndex, resolveTarEntry, type TarEntry } from './tar-reader.ts';

/**
 * Images to push, named like skopeo's transports:
 *
 * | name | what it reads |
 * |---|---|
 * | `oci:DIR[:TAG]` | an OCI image layout directory (`index.json`, `blobs/sha256/…`) |
 * | `oci-archive:FILE[:TAG]` | a tar of an OCI image layout |
 * | `docker-archive:FILE[:REPO:TAG]` | `docker save` output (`manifest.json`, config, layer tars), as a Docker schema 2 manifest |
 * | `docker-daemon:IMAGE` | `docker save IMAGE` into a temp file (honours `DOCKER_HOST`), then as docker-archive |
 *
 * Bytes are never loaded whole: a blob is a region of a file (a layout blob, or a member of a tar) read with
 * offsets when it is uploaded. Only manifests and configs are read into memory.
 * @see https://github.com/opencontainers/image-spec/blob/v1.1.1/image-layout.md
 */

export type SourceName =
  | { transport: 'oci'; path: string; reference?: string }
  | { transport: 'oci-archive'; path: string; reference?: string }
  | { transport: 'docker-archive'; path: string; reference?: string }
  | { transport: 'docker-daemon'; image: string };

/** A manifest to push: its exact bytes, the blobs it needs (config and layers) and, for an index, its children. */
export interface ManifestNode {
  descriptor: Descriptor;
  bytes: Buffer;
  config?: Descriptor;
  layers: Descriptor[];
  children: ManifestNode[];
}

export interface ImageSource {
  /** For messages: `oci:/tmp/layout:v1`. */
  description: string;
  root: ManifestNode;
  /** The content of a blob the manifests name. */
  blob(digest: string): BlobContent;
  close(): Promise<void>;
}

export interface OpenOptions {
  env?: NodeJS.ProcessEnv;
  /** The docker CLI to run for `docker-daemon:` (default `docker`). */
  dockerCommand?: string;
}

const TRANSPORTS = ['oci', 'oci-archive', 'docker-archive', 'docker-daemon'] as const;
const REF_NAME = 'org.opencontainers.image.ref.name';
const MAX_JSON_BYTES = 4 * 1024 * 1024;

export function parseSourceName(text: string): SourceName {
  const colon = text.indexOf(':');
  const transport = colon < 0 ? '' : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  if (!(TRANSPORTS as readonly string[]).includes(transport) || rest === '') {
    throw new Error(`unknown source "${text}": use oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE or docker-daemon:IMAGE`);
  }
  if (transport === 'docker-daemon') return { transport, image: rest };
  const split = rest.indexOf(':');
  const path = split < 0 ? rest : rest.slice(0, split);
  const reference = split < 0 ? undefined : rest.slice(split + 1);
  const name = { transport: transport as 'oci' | 'oci-archive' | 'docker-archive', path };
  return reference ? { ...name, reference } : name;
}

export async function openImageSource(source: SourceName | string, options: OpenOptions = {}): Promise<ImageSource> {
  const name = typeof source === 'string' ? parseSourceName(source) : source;
  const description = typeof source === 'string' ? source : describe(name);
  switch (name.transport) {
    case 'oci':
      return layoutSource(description, directoryFiles(name.path), name.reference, async () => undefined);
    case 'oci-archive': {
      const archive = await tarFiles(name.path);
      return layoutSource(description, archive.files, name.reference, archive.close);
    }
    case 'docker-archive': {
      const archive = await tarFiles(name.path);
      return dockerArchiveSource(description, archive.files, name.reference, archive.close);
    }
    case 'docker-daemon': {
      const directory = await mkdtemp(join(options.env?.TMPDIR ?? tmpdir(), 'ocireg-push-'));
      const file = join(directory, 'image.tar');
      const cleanUp = () => rm(directory, { recursive: true, force: true });
      try {
        await dockerSave(options.dockerCommand ?? 'docker', name.image, file, options.env ?? process.env);
        const archive = await tarFiles(file);
        return await dockerArchiveSource(description, archive.files, name.image.includes('@') ? undefined : name.image, async () => {
          await archive.close();
          await cleanUp();
        });
      } catch (error) {
        await cleanUp();
        throw error;
      }
    }
  }
}

function describe(name: SourceName): string {
  return name.transport === 'docker-daemon' ? `docker-daemon:${name.image}` : `${name.transport}:${name.path}${name.reference ? `:${name.reference}` : ''}`;
}

// ---- where files are: a directory, or members of a tar ---------------------------------------------------------

/** A region of a file on disk. */
interface FileRegion {
  path: string;
  offset: number;
  size: number;
}

interface Files {
  /** The region holding a path of the layout or archive, or undefined when absent. */
  find(path: string): Promise<FileRegion | undefined>;
  what: string;
}

function directoryFiles(root: string): Files {
  return {
    what: `the directory ${root}`,
    async find(path) {
      const full = join(root, path);
      const info = await stat(full).catch(() => undefined);
      return info?.isFile() ? { path: full, offset: 0, size: info.size } : undefined;
    },
  };
}

async function tarFiles(file: string): Promise<{ files: Files; close: () => Promise<void> }> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throw new Error(`cannot open ${file}: ${(error as Error).message}`);
  }
  let entries: Map<string, TarEntry>;
  try {
    entries = new Map((await readTarIndex(handle)).map((entry) => [entry.name, entry]));
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  } finally {
    await handle.close();
  }
  return {
    files: {
      what: `the archive ${file}`,
      async find(path) {
        const entry = resolveTarEntry(entries, normalizeTarPath(path));
        return entry ? { path: file, offset: entry.offset, size: entry.size } : undefined;
      },
    },
    close: async () => undefined,
  };
}

async function readRegion(region: FileRegion, limit = MAX_JSON_BYTES): Promise<Buffer> {
  if (region.size > limit) throw new Error(`${region.path}: ${region.size} bytes is too large for a manifest or config`);
  const handle = await open(region.path, 'r');
  try {
    const buffer = Buffer.alloc(region.size);
    const { bytesRead } = await handle.read(buffer, 0, region.size, region.offset);
    if (bytesRead !== region.size) throw new Error(`${region.path}: short read`);
    return buffer;
  } finally {
    await handle.close();
  }
}

function regionContent(digest: string, region: FileRegion): BlobContent {
  return {
    digest,
    size: region.size,
    open: (start, end) => createReadStream(region.path, { start: region.offset + start, end: region.offset + end, highWaterMark: 256 * 1024 }),
  };
}

/** An image source whose blobs are regions of files (a layout directory or an archive), by digest. */
function sourceOfRegions(description: string, root: ManifestNode, regions: Map<string, FileRegion>, close: () => Promise<void>): ImageSource {
  return {
    description,
    root,
    blob(digest) {
      const region = regions.get(digest);
      if (!region) throw new Error(`no blob ${digest} in ${description}`);
      return regionContent(digest, region);
    },
    close,
  };
}

async function hashRegion(region: FileRegion): Promise<string> {
  const hash = createHash('sha256');
  if (region.size > 0) {
    await pipeline(createReadStream(region.path, { start: region.offset, end: region.offset + region.size - 1, highWaterMark: 1024 * 1024 }), hash);
  }
  return `sha256:${hash.digest('hex')}`;
}

function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(bytes.toString('utf8')) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new Error(`${what} is not a JSON object`);
}

// ---- OCI image layout --------------------------------------------------------------------------------------------

async function layoutSource(description: string, files: Files, reference: string | undefined, close: () => Promise<void>): Promise<ImageSource> {
  const indexRegion = await files.find('index.json');
  if (!indexRegion) throw new Error(`${files.what} is not an OCI image layout: no index.json`);
  const index = parseJson(await readRegion(indexRegion), `index.json in ${files.what}`);
  const manifests = (Array.isArray(index.manifests) ? index.manifests : []) as Array<Descriptor & { annotations?: Record<string, string> }>;
  const names = manifests.map((entry) => entry.annotations?.[REF_NAME]).filter((name): name is string => name !== undefined);
  let chosen: Descriptor | undefined;
  if (reference !== undefined) {
    chosen = manifests.find((entry) => entry.annotations?.[REF_NAME] === reference || entry.digest === reference);
    if (!chosen) throw new Error(`${files.what} has no image "${reference}"; it has: ${names.join(', ') || 'no named images'}`);
  } else if (manifests.length === 1) {
    chosen = manifests[0];
  } else {
    throw new Error(`${files.what} holds ${manifests.length} images: name one (${description}:<tag>); it has: ${names.join(', ') || 'none'}`);
  }

  const regions = new Map<string, FileRegion>();
  const blobPath = (digest: string) => {
    const [algorithm, hex] = digest.split(':');
    if (!algorithm || !hex || !/^[a-z0-9]+$/.test(algorithm) || !/^[a-f0-9]+$/.test(hex)) throw new Error(`invalid digest "${digest}" in ${files.what}`);
    return `blobs/${algorithm}/${hex}`;
  };
  const locate = async (descriptor: Descriptor): Promise<FileRegion> => {
    const region = await files.find(blobPath(descriptor.digest));
    if (!region) throw new Error(`${files.what} lacks blob ${descriptor.digest} (${descriptor.mediaType})`);
    if (region.size !== descriptor.size) throw new Error(`${files.what}: blob ${descriptor.digest} has ${region.size} bytes, its descriptor says ${descriptor.size}`);
    regions.set(descriptor.digest, region);
    return region;
  };

  const resolve = async (descriptor: Descriptor): Promise<ManifestNode> => {
    const bytes = await readRegion(await locate(descriptor));
    const actual = digestOf(bytes);
    if (descriptor.digest.startsWith('sha256:') && actual !== descriptor.digest) throw new Error(`${files.what}: manifest ${descriptor.digest} is corrupt (its content hashes to ${actual})`);
    const json = parseJson(bytes, `manifest ${descriptor.digest}`);
    const mediaType = (typeof json.mediaType === 'string' ? json.mediaType : undefined) ?? descriptor.mediaType;
    const node: ManifestNode = { descriptor: { mediaType, digest: descriptor.digest, size: descriptor.size }, bytes, layers: [], children: [] };
    if (Array.isArray(json.manifests)) {
      for (const child of json.manifests as Descriptor[]) {
        if (!(await files.find(blobPath(child.digest)))) {
          throw new Error(`${files.what}: the index ${descriptor.digest} names ${child.digest}, which the layout lacks (copy all platforms: skopeo copy --all)`);
        }
        node.children.push(await resolve(child));
      }
    } else {
      const config = json.config as Descriptor | undefined;
      const layers = (Array.isArray(json.layers) ? json.layers : []) as Array<Descriptor & { urls?: string[] }>;
      if (config) {
        await locate(config);
        node.config = { mediaType: config.mediaType, digest: config.digest, size: config.size };
      }
      for (const layer of layers) {
        // Non-distributable layers with `urls` are fetched from elsewhere; a registry need not hold them.
        if (Array.isArray(layer.urls) && !(await files.find(blobPath(layer.digest)))) continue;
        await locate(layer);
        node.layers.push({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size });
      }
    }
    return node;
  };

  const root = await resolve(chosen!);
  return sourceOfRegions(description, root, regions, close);
}

// ---- docker save output -------------------------------------------------------------------------------------------

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
async function dockerArchiveSource(description: string, files: Files, reference: string | undefined, close: () => Promise<void>): Promise<ImageSource> {
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

function dockerSave(command: string, image: string, file: string, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, ['save', '--output', file, image], { env, maxBuffer: 1024 * 1024 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const reason = (error as { code?: string | number }).code === 'ENOENT' ? `${command} is not installed` : stderr.trim() || error.message;
      reject(new Error(`docker save ${image} failed${env.DOCKER_HOST ? ` (DOCKER_HOST=${env.DOCKER_HOST})` : ''}: ${reason}`));
    });
  });
}

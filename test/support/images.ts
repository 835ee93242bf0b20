import { createHash, randomFillSync } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Descriptor } from '../../lib/registry/types.ts';
import { sha256, sha256File } from './digests.ts';
import { runOk } from './tools.ts';

/**
 * Test images built offline with umoci (OCI layouts) and tar (tarballs for `docker import`, layouts for
 * `ctr images import`), with the digests the registry must reproduce. Layers hold fresh random bytes, so they are
 * incompressible and new to every registry and client cache.
 */

export const MiB = 1024 * 1024;

export interface OciManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

/** One tagged image in an OCI layout. */
export interface LayoutImage {
  layout: string;
  tag: string;
  /** `oci:LAYOUT:TAG`, a skopeo transport reference. */
  ref: string;
  manifestDigest: string;
  /** The manifest's exact bytes, as stored in the layout. */
  manifestBytes: Buffer;
  manifest: OciManifest;
  /** Config and layers: every blob the manifest names. */
  blobs: Descriptor[];
}

export const REF_NAME = 'org.opencontainers.image.ref.name';

/** Where an OCI layout keeps the blob with this digest. */
export function blobPath(layout: string, digest: string): string {
  const [algorithm, hex] = digest.split(':');
  return join(layout, 'blobs', algorithm!, hex!);
}

/** Writes `size` fresh random bytes to `path`, a mebibyte at a time; returns the file's digest. */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const file = await open(path, 'w');
  try {
    const chunk = Buffer.allocUnsafe(Math.min(MiB, Math.max(size, 1)));
    for (let written = 0; written < size; ) {
      const part = chunk.subarray(0, Math.min(chunk.byteLength, size - written));
      randomFillSync(part);
      hash.update(part);
      await file.write(part);
      written += part.byteLength;
    }
  } finally {
    await file.close();
  }
  return `sha256:${hash.digest('hex')}`;
}

async function layoutExists(layout: string): Promise<boolean> {
  return stat(join(layout, 'oci-layout')).then(
    () => true,
    () => false,
  );
}

/** The descriptor tagged `tag` (the `org.opencontainers.image.ref.name` annotation) in an OCI layout's index.json. */
export async function layoutEntry(layout: string, tag: string): Promise<Descriptor> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as OciIndex;
  const entry = index.manifests.find((candidate) => candidate.annotations?.[REF_NAME] === tag);
  if (!entry) throw new Error(`no image tagged "${tag}" in ${layout}/index.json: ${JSON.stringify(index.manifests)}`);
  return entry;
}

/** Reads the image manifest tagged `tag` from an OCI layout. */
export async function readLayoutImage(layout: string, tag: string): Promise<LayoutImage> {
  const entry = await layoutEntry(layout, tag);
  const manifestBytes = await readFile(blobPath(layout, entry.digest));
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as OciManifest;
  return { layout, tag, ref: `oci:${layout}:${tag}`, manifestDigest: entry.digest, manifestBytes, manifest, blobs: [manifest.config, ...manifest.layers] };
}

export interface RandomImageOptions {
  /** The OCI layout directory; created with `umoci init` if missing. */
  layout: string;
  tag: string;
  /** Size of the random file in the image's one layer (the gzip'd layer is slightly larger). */
  randomBytes: number;
  /** Image config architecture (default: umoci's, the host's). */
  architecture?: string;
}

/** `umoci new` + `umoci insert` of a file of random bytes: an image with one incompressible layer. */
export async function buildRandomImage(options: RandomImageOptions): Promise<LayoutImage> {
  const { layout, tag } = options;
  if (!(await layoutExists(layout))) await runOk('umoci', ['init', '--layout', layout]);
  await runOk('umoci', ['new', '--image', `${layout}:${tag}`]);
  if (options.architecture !== undefined) await runOk('umoci', ['config', '--image', `${layout}:${tag}`, '--architecture', options.architecture]);
  return addRandomLayer(layout, tag, options.randomBytes);
}

/**
 * Adds a layer holding one more random file to the image `from` (as tag `to`, default: in place). Images made this
 * way from one base share the base's layers.
 */
export async function addRandomLayer(layout: string, from: string, randomBytes: number, to = from): Promise<LayoutImage> {
  const scratch = await mkdtemp(join(tmpdir(), 'ocireg-file-'));
  try {
    const file = join(scratch, 'random.bin');
    await writeRandomFile(file, randomBytes);
    const args = ['insert', '--image', `${layout}:${from}`];
    if (to !== from) args.push('--tag', to);
    await runOk('umoci', [...args, file, `/random-${to}-${Date.now()}.bin`]);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return readLayoutImage(layout, to);
}

/**
 * Writes an OCI image index over `children` (each with its config's platform) into the layout and tags it `tag`:
 * a multi-arch image for `skopeo copy --all`.
 */
export async function writeIndex(layout: string, tag: string, children: LayoutImage[]): Promise<{ digest: string; bytes: Buffer; index: OciIndex }> {
  const manifests: Descriptor[] = [];
  for (const child of children) {
    const config = JSON.parse(await readFile(blobPath(layout, child.manifest.config.digest), 'utf8')) as { architecture: string; os: string };
    manifests.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: child.manifestDigest,
      size: child.manifestBytes.byteLength,
      platform: { architecture: config.architecture, os: config.os },
    });
  }
  const index: OciIndex = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests };
  const bytes = Buffer.from(JSON.stringify(index));
  const digest = sha256(bytes);
  await writeFile(blobPath(layout, digest), bytes);
  const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as OciIndex;
  top.manifests = top.manifests.filter((entry) => entry.annotations?.[REF_NAME] !== tag);
  top.manifests.push({ mediaType: 'application/vnd.oci.image.index.v1+json', digest, size: bytes.byteLength, annotations: { [REF_NAME]: tag } });
  await writeFile(join(layout, 'index.json'), JSON.stringify(top));
  return { digest, bytes, index };
}

/**
 * A tar holding one file of `size` random bytes, for `docker import`. Returns the tar's digest, which docker
 * reports as the layer's diff ID (the digest of the uncompressed layer).
 */
export async function randomTarball(path: string, size: number): Promise<{ path: string; digest: string; size: number }> {
  const scratch = await mkdtemp(join(tmpdir(), 'ocireg-tar-'));
  try {
    await writeRandomFile(join(scratch, 'payload.bin'), size);
    await runOk('tar', ['--create', '--file', path, '--directory', scratch, '--owner=0', '--group=0', 'payload.bin']);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return { path, digest: await sha256File(path), size: (await stat(path)).size };
}

/** Tars an OCI layout (oci-layout, index.json, blobs/): the OCI archive `ctr images import` reads. */
export async function layoutArchive(layout: string, path: string): Promise<string> {
  await runOk('tar', ['--create', '--file', path, '--directory', layout, 'oci-layout', 'index.json', 'blobs']);
  return path;
}

/** True when two files hold the same bytes. */
export async function sameFileBytes(a: string, b: string): Promise<boolean> {
  const [left, right] = await Promise.all([stat(a), stat(b)]);
  return left.size === right.size && (await readFile(a)).equals(await readFile(b));
}

// ---- what the registry serves --------------------------------------------------------------------------------------

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export interface FetchedManifest {
  status: number;
  contentType: string | null;
  /** The `Docker-Content-Digest` header. */
  headerDigest: string | null;
  /** The digest of the bytes received. */
  digest: string;
  bytes: Buffer;
}

/** GET /v2/<name>/manifests/<reference> with an Accept for every manifest type. */
export async function fetchManifest(baseUrl: string, name: string, reference: string, accept = MANIFEST_ACCEPT): Promise<FetchedManifest> {
  const response = await fetch(`${baseUrl}/v2/${name}/manifests/${reference}`, { headers: { accept } });
  const bytes = Buffer.from(await response.arrayBuffer());
  return { status: response.status, contentType: response.headers.get('content-type'), headerDigest: response.headers.get('docker-content-digest'), digest: sha256(bytes), bytes };
}

/** GET /v2/<name>/blobs/<digest>, hashed as it streams: the status, the digest and size of what came back. */
export async function fetchBlobDigest(baseUrl: string, name: string, digest: string): Promise<{ status: number; digest: string; size: number }> {
  const response = await fetch(`${baseUrl}/v2/${name}/blobs/${digest}`);
  const hash = createHash('sha256');
  let size = 0;
  const reader = response.body?.getReader();
  for (let read = await reader?.read(); read && !read.done; read = await reader!.read()) {
    hash.update(read.value);
    size += read.value.byteLength;
  }
  return { status: response.status, digest: `sha256:${hash.digest('hex')}`, size };
}

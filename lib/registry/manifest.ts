import { limitBytes, readAll } from './bytes.ts';
import { parseDigest } from './digest.ts';
import { manifestInvalid, OciError, payloadTooLarge } from './errors.ts';
import type { ByteSource, Descriptor } from './types.ts';

/**
 * Manifest media types and the checks a manifest must pass before it is stored.
 * @see https://github.com/opencontainers/image-spec/blob/v1.1.1/manifest.md
 * @see https://github.com/opencontainers/image-spec/blob/v1.1.1/image-index.md
 */

/**
 * Every media type the code names, in one table: manifests and indexes (what the registry stores as manifests),
 * then configs and layers (what `ocireg push` writes into the manifests it builds from `docker save` output).
 * @see https://github.com/opencontainers/image-spec/blob/v1.1.1/media-types.md
 * @see https://distribution.github.io/distribution/spec/manifest-v2-2/#media-types
 */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  /** The empty descriptor's type (`{}`), an artifact's config. */
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

const IMAGE_MANIFESTS = new Set<string>([MediaType.ociManifest, MediaType.dockerManifest]);
const INDEXES = new Set<string>([MediaType.ociIndex, MediaType.dockerManifestList]);

/** Layers a registry is not expected to hold (Windows base layers, `urls`-only content). */
const NON_DISTRIBUTABLE = /^application\/vnd\.(?:oci\.image\.layer\.nondistributable\.|docker\.image\.rootfs\.foreign\.)/;

/** The spec's floor for manifest size; larger manifests get 413. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface ParsedManifest {
  mediaType: string;
  /** Blobs (config and layers) that must be linked in the repository. */
  blobs: string[];
  /** Child manifests (of an index) that must exist in the repository. */
  manifests: string[];
  subject?: string;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export function isManifestMediaType(mediaType: string): boolean {
  return IMAGE_MANIFESTS.has(mediaType) || INDEXES.has(mediaType);
}

/**
 * Parses and validates manifest bytes. `contentType` is the request's Content-Type (may be absent):
 * when both it and the body's `mediaType` are present they must agree.
 */
export function parseManifest(content: Uint8Array, contentType: string | undefined): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(content));
  } catch (cause) {
    throw new OciError('MANIFEST_INVALID', 'manifest invalid: body is not valid JSON', undefined, { cause });
  }
  if (!isObject(json)) throw manifestInvalid('body is not a JSON object');

  const declared = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  if (json.mediaType !== undefined && declared === undefined) throw manifestInvalid('mediaType must be a string');
  const header = normalizeContentType(contentType);
  if (declared && header && declared !== header) {
    throw manifestInvalid('Content-Type does not match the manifest mediaType', { contentType: header, mediaType: declared });
  }
  const mediaType = declared ?? header ?? inferMediaType(json);
  if (!isManifestMediaType(mediaType)) {
    throw manifestInvalid(`unsupported manifest media type ${mediaType}`, { mediaType });
  }
  if (json.schemaVersion !== 2) throw manifestInvalid('schemaVersion must be 2', { schemaVersion: json.schemaVersion });

  const parsed: ParsedManifest = IMAGE_MANIFESTS.has(mediaType) ? parseImageManifest(json, mediaType) : parseIndex(json, mediaType);
  if (json.subject !== undefined) parsed.subject = descriptor(json.subject, 'subject').digest;
  if (json.annotations !== undefined) parsed.annotations = stringMap(json.annotations, 'annotations');
  return parsed;
}

function parseImageManifest(json: Record<string, unknown>, mediaType: string): ParsedManifest {
  const config = descriptor(json.config, 'config');
  if (!Array.isArray(json.layers)) throw manifestInvalid('layers must be an array');
  const layers = json.layers.map((layer, i) => descriptor(layer, `layers[${i}]`));
  const artifactType = optionalString(json.artifactType, 'artifactType');
  const blobs = [config.digest];
  for (const layer of layers) {
    if (!NON_DISTRIBUTABLE.test(layer.mediaType) && !layer.urls?.length) blobs.push(layer.digest);
  }
  // An image manifest's artifact type is its artifactType, else its config's media type (image-spec, "Guidelines for artifact usage").
  return { mediaType, blobs, manifests: [], artifactType: artifactType ?? config.mediaType };
}

function parseIndex(json: Record<string, unknown>, mediaType: string): ParsedManifest {
  if (!Array.isArray(json.manifests)) throw manifestInvalid('manifests must be an array');
  const children = json.manifests.map((child, i) => descriptor(child, `manifests[${i}]`));
  const parsed: ParsedManifest = { mediaType, blobs: [], manifests: children.map((child) => child.digest) };
  const artifactType = optionalString(json.artifactType, 'artifactType');
  if (artifactType !== undefined) parsed.artifactType = artifactType;
  return parsed;
}

function inferMediaType(json: Record<string, unknown>): string {
  if (json.config !== undefined) return MediaType.ociManifest;
  if (json.manifests !== undefined) return MediaType.ociIndex;
  throw manifestInvalid('no mediaType and no Content-Type given');
}

function descriptor(value: unknown, field: string): Descriptor {
  if (!isObject(value)) throw manifestInvalid(`${field} must be a descriptor object`);
  if (typeof value.mediaType !== 'string' || value.mediaType === '') throw manifestInvalid(`${field}.mediaType must be a string`);
  if (typeof value.digest !== 'string') throw manifestInvalid(`${field}.digest must be a string`);
  try {
    parseDigest(value.digest);
  } catch (cause) {
    throw new OciError('MANIFEST_INVALID', `manifest invalid: ${field}.digest is not a valid digest`, { digest: value.digest }, { cause });
  }
  if (typeof value.size !== 'number' || !Number.isSafeInteger(value.size) || value.size < 0) {
    throw manifestInvalid(`${field}.size must be a non-negative integer`);
  }
  const result: Descriptor = { mediaType: value.mediaType, digest: value.digest, size: value.size };
  if (value.urls !== undefined) {
    if (!Array.isArray(value.urls) || !value.urls.every((url) => typeof url === 'string')) throw manifestInvalid(`${field}.urls must be strings`);
    result.urls = value.urls as string[];
  }
  return result;
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw manifestInvalid(`${field} must be a string`);
  return value;
}

function stringMap(value: unknown, field: string): Record<string, string> {
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw manifestInvalid(`${field} must map strings to strings`);
  }
  return value as Record<string, string>;
}

function normalizeContentType(contentType: string | undefined): string | undefined {
  const type = contentType?.split(';', 1)[0]?.trim().toLowerCase();
  // Clients that do not know the type send a generic one; the body then decides.
  if (!type || type === 'application/octet-stream' || type === 'application/json') return undefined;
  return type;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads a manifest body, refusing one over {@link MAX_MANIFEST_BYTES}: up front when its length is declared, else
 * as soon as the stream passes the limit (never buffering more).
 */
export async function readManifestBody(body: ByteSource, length: number | undefined): Promise<Uint8Array> {
  const tooLarge = (size: number): never => {
    throw payloadTooLarge(`manifest of ${size} bytes exceeds the limit of ${MAX_MANIFEST_BYTES} bytes`, { size, max: MAX_MANIFEST_BYTES });
  };
  if (length !== undefined && length > MAX_MANIFEST_BYTES) tooLarge(length);
  return readAll(limitBytes(body, MAX_MANIFEST_BYTES, tooLarge));
}

/**
 * What a stored manifest needs in its repository, as its push checked: its blobs and child manifests. A write that
 * stores it again (rollback, promotion) passes them to MetadataStore.putManifest, which checks them atomically
 * against garbage collection.
 */
export function referencesOf(manifest: { content: Uint8Array; mediaType: string }): { blobs: string[]; manifests: string[] } {
  const parsed = parseManifest(manifest.content, manifest.mediaType);
  return { blobs: parsed.blobs, manifests: parsed.manifests };
}

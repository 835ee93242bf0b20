import type { BlobRead } from './ports.ts';
import type { OciError } from './errors.ts';

/** Domain types shared by the core and the storage ports. */

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** An OCI content descriptor. @see https://github.com/opencontainers/image-spec/blob/v1.1.1/descriptor.md */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
  platform?: Record<string, unknown>;
}

/** A committed blob: its digest, size and where the blob store keeps its bytes (opaque to the core). */
export interface BlobRecord {
  digest: string;
  size: number;
  location: string;
}

/**
 * A pull-through cache blob being copied outside the request that asked (lambdas/cache-blob-miss-policy.ts): not
 * stored yet, its size as the upstream declared it, and where a client may read its bytes meanwhile (a redirect to
 * the upstream's own URL), or nowhere yet. No `location`: nothing here can read it.
 */
export interface BlobInFlight {
  digest: string;
  size: number;
  location?: undefined;
  read: BlobRead | undefined;
  /** Why no copy will be stored (a pull-through fill over its repository's quota): what a read without `read` answers. */
  refused?: OciError;
}

/** A manifest as stored: the exact bytes pushed plus what the indexes need. */
export interface StoredManifest {
  digest: string;
  mediaType: string;
  content: Uint8Array;
  /** Digest of the `subject` field, indexed for the referrers API. */
  subject?: string;
  /** The manifest's `artifactType`, or its config's media type for an image manifest. */
  artifactType?: string;
  annotations?: Record<string, string>;
  /**
   * When a pull last read this record (epoch ms), as MetadataStore.recordPull (ports.ts) wrote it: at most once a UTC
   * day, so it may lag a day. Set by the stores on reads (the pull path decides from it whether to write); absent when
   * never recorded. Not part of the manifest: putManifest ignores it.
   */
  pulledAt?: number;
}

/** The descriptor a referrers response lists for a stored manifest. */
export function referrerDescriptor(manifest: StoredManifest): Descriptor {
  const descriptor: Descriptor = {
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    size: manifest.content.byteLength,
  };
  if (manifest.artifactType !== undefined) descriptor.artifactType = manifest.artifactType;
  if (manifest.annotations !== undefined) descriptor.annotations = manifest.annotations;
  return descriptor;
}

/**
 * An upload in progress. The core owns `offset` and `version`; `storage` is the blob store's own state
 * (a temp file path, or an S3 multipart id, its parts and a saved SHA-256 state), opaque to the core.
 */
export interface UploadSession {
  name: string;
  uploadId: string;
  /** Bytes received so far; the next chunk must start here. */
  offset: number;
  /** Incremented by every successful update: the compare-and-set token. */
  version: number;
  /** Epoch milliseconds. */
  createdAt: number;
  storage: Json;
}

/** `n`/`last` pagination: entries strictly after `last` in lexical order, at most `limit`. */
export interface PageRequest {
  limit?: number;
  last?: string;
}

export interface Page<T> {
  items: T[];
  /** More entries follow the last one returned. */
  hasMore: boolean;
}

/** An inclusive byte range, as HTTP writes it. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Request bodies and blob contents travel as async iterables of bytes: a Node stream, or one Buffer from a Lambda event. */
export type ByteSource = AsyncIterable<Uint8Array>;

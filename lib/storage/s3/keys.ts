import { OciError } from '../../registry/errors.ts';

/**
 * Every S3 key of the registry's bucket, built here and only here.
 *
 * <bucket>/
 *   blobs/<uploadId>                       committed blob: the object its upload wrote (multipart completed, or one
 *                                          PutObject/CopyObject), or blobs/<new id> for a blob pushed in one request
 *                                          (S3BlobStore.commitWhole). Never copied after commit: the metadata store maps
 *                                          digest → this key, and a duplicate upload's object is deleted by the core.
 *   uploads/<uploadId>/<offset>-<random>   an append buffered until the upload has ≥ 5 MiB for one multipart part.
 *                                          Written once, never overwritten (the random part keeps concurrent appends
 *                                          apart). Expired by the bucket lifecycle (lib/storage/aws-resources.ts).
 *   manifests/<alg>/<hex>                  manifest content too large for a DynamoDB item (content-addressed, shared by
 *                                          every repository that holds the manifest; only garbage collection deletes it)
 *
 * A blob's location, as the metadata store records it, is its key: `blobs/<uploadId>` or `blobs/<new id>`.
 */

/** Upload ids come from the core (UUIDs); anything else would be a bug or a forged state, never a key. */
const UPLOAD_ID = /^[A-Za-z0-9_-]{1,128}$/;

export const BLOBS_PREFIX = 'blobs/';
export const UPLOADS_PREFIX = 'uploads/';
export const MANIFESTS_PREFIX = 'manifests/';

export function blobKey(uploadId: string): string {
  return `${BLOBS_PREFIX}${checkedUploadId(uploadId)}`;
}

/** Whether `location` is a key this store could have returned from a commit. */
export function isBlobKey(location: string): boolean {
  return location.startsWith(BLOBS_PREFIX) && UPLOAD_ID.test(location.slice(BLOBS_PREFIX.length));
}

/** `location` as the blob key it must be: a record pointing anywhere else is a fault of ours, not the client's. */
export function checkedBlobKey(location: string): string {
  if (!isBlobKey(location)) throw new OciError('UNKNOWN', 'blob location is not an S3 blob key', { location });
  return location;
}

/** The folder of one upload's buffered appends. */
export function uploadBufferPrefix(uploadId: string): string {
  return `${UPLOADS_PREFIX}${checkedUploadId(uploadId)}/`;
}

export function uploadBufferKey(uploadId: string, offset: number, random: string): string {
  return `${uploadBufferPrefix(uploadId)}${offset}-${random}`;
}

/** Where a large manifest's bytes live, by its digest (`sha256:<hex>`). */
export function manifestKey(digest: string): string {
  const [algorithm, hex] = digest.split(':', 2) as [string, string | undefined];
  if (!hex || !/^[a-z0-9]+$/.test(algorithm) || !/^[a-f0-9]+$/.test(hex)) throw new Error(`not a digest: ${digest}`);
  return `${MANIFESTS_PREFIX}${algorithm}/${hex}`;
}

/** The digest a key built by {@link manifestKey} names; undefined for any other key. */
export function digestOfManifestKey(key: string): string | undefined {
  const match = /^manifests\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(key);
  return match ? `${match[1]}:${match[2]}` : undefined;
}

function checkedUploadId(uploadId: string): string {
  if (!UPLOAD_ID.test(uploadId)) throw new Error(`unsafe upload id for an S3 key: ${JSON.stringify(uploadId)}`);
  return uploadId;
}

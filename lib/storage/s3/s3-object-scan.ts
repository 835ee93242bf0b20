import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { GcEntry, GcScanSource, ScanPage } from '../../registry/gc/gc-entries.ts';
import { BLOBS_PREFIX, digestOfManifestKey, isBlobKey, MANIFESTS_PREFIX } from './keys.ts';

/** The prefixes a scan lists, in order; `uploads/` is left to the bucket's lifecycle rule (aws-resources.ts). */
const PREFIXES = [BLOBS_PREFIX, MANIFESTS_PREFIX] as const;

/** Where a scan of the bucket stands: the prefix, and the continuation token within it. */
interface Position {
  prefix: number;
  token?: string;
}

export interface S3ObjectScanOptions {
  s3: S3Client;
  bucket: string;
}

/**
 * The bucket's part of a garbage-collection scan: every object under `blobs/` (a `bytes` entry, whether or not a
 * record names it: the collector deletes those no record names once old, what a crash between writing an object
 * and recording it leaves) and under `manifests/` (a `manifest-body` entry). One ListObjectsV2 page per call.
 *
 * Listing is strongly consistent (S3, since December 2020: "any subsequent … list request … receives the latest
 * version"): an object written before the scan is listed. An object's date is its LastModified, by S3's clock,
 * which for an object completed from a multipart upload is when the upload began (docs/aws-assumptions.md).
 * @see https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html#ConsistencyModel
 */
export class S3ObjectScan implements GcScanSource {
  readonly #s3: S3Client;
  readonly #bucket: string;

  constructor(options: S3ObjectScanOptions) {
    this.#s3 = options.s3;
    this.#bucket = options.bucket;
  }

  async scan(cursor: string | undefined, limit: number): Promise<ScanPage<GcEntry>> {
    const at: Position = cursor === undefined ? { prefix: 0 } : (JSON.parse(Buffer.from(cursor, 'base64url').toString()) as Position);
    const prefix = PREFIXES[at.prefix]!;
    const page = await this.#s3.send(
      new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: prefix, MaxKeys: Math.min(Math.max(limit, 1), 1000), ...(at.token ? { ContinuationToken: at.token } : {}) }),
    );
    const items: GcEntry[] = [];
    for (const object of page.Contents ?? []) {
      const changedAt = object.LastModified?.getTime() ?? 0;
      const size = object.Size ?? 0;
      if (!object.Key) continue;
      if (prefix === BLOBS_PREFIX && isBlobKey(object.Key)) items.push({ kind: 'bytes', location: object.Key, size, changedAt });
      const digest = prefix === MANIFESTS_PREFIX ? digestOfManifestKey(object.Key) : undefined;
      if (digest !== undefined) items.push({ kind: 'manifest-body', digest, size, changedAt });
    }
    const next: Position | undefined =
      page.IsTruncated && page.NextContinuationToken ? { prefix: at.prefix, token: page.NextContinuationToken } : at.prefix + 1 < PREFIXES.length ? { prefix: at.prefix + 1 } : undefined;
    return { items, cursor: next && Buffer.from(JSON.stringify(next)).toString('base64url') };
  }
}

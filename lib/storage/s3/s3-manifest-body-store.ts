import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ManifestBodyStore } from '../../registry/ports.ts';
import { manifestKey } from './keys.ts';
import { isS3Error } from './s3-errors.ts';

export interface S3ManifestBodyStoreOptions {
  s3: S3Client;
  bucket: string;
}

/**
 * Manifest bodies too large for a DynamoDB item, at `manifests/<alg>/<hex>` (keys.ts). A put of a sha256 digest
 * carries `x-amz-checksum-sha256`, so S3 itself refuses bytes that do not hash to the key (BadDigest).
 */
export class S3ManifestBodyStore implements ManifestBodyStore {
  readonly #s3: S3Client;
  readonly #bucket: string;

  constructor(options: S3ManifestBodyStoreOptions) {
    this.#s3 = options.s3;
    this.#bucket = options.bucket;
  }

  async put(digest: string, content: Uint8Array, mediaType: string): Promise<void> {
    const [algorithm, hex] = digest.split(':', 2) as [string, string];
    await this.#s3.send(
      new PutObjectCommand({
        Bucket: this.#bucket,
        Key: manifestKey(digest),
        Body: content,
        ContentLength: content.byteLength,
        ContentType: mediaType,
        ...(algorithm === 'sha256' ? { ChecksumSHA256: Buffer.from(hex, 'hex').toString('base64') } : {}),
      }),
    );
  }

  async get(digest: string): Promise<Uint8Array | undefined> {
    try {
      const { Body } = await this.#s3.send(new GetObjectCommand({ Bucket: this.#bucket, Key: manifestKey(digest) }));
      return Body ? await Body.transformToByteArray() : new Uint8Array();
    } catch (error) {
      if (isS3Error(error, 'NoSuchKey', 'NotFound')) return undefined;
      throw error;
    }
  }

  async delete(digest: string): Promise<void> {
    await this.#s3.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: manifestKey(digest) }));
  }
}

import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { ManifestBodyStore, MetadataStore, PutManifestOptions } from '../../registry/ports.ts';
import type { BlobRecord, Descriptor, Page, PageRequest, StoredManifest, UploadSession } from '../../registry/types.ts';
import { UPLOAD_SESSION_TTL_SECONDS } from '../aws-resources.ts';
import { DynamoDbBlobs } from './dynamodb-blobs.ts';
import { DynamoDbManifests } from './dynamodb-manifests.ts';
import { DynamoDbTable } from './dynamodb-table.ts';
import { DynamoDbUploads } from './dynamodb-uploads.ts';

export interface DynamoDbMetadataStoreOptions {
  dynamo: DynamoDBClient;
  table: string;
  /**
   * Where manifests too large for an item go (over ~350 KB), e.g. S3ManifestBodyStore. Without it such manifests
   * are refused with 413.
   */
  bodies?: ManifestBodyStore;
  /** Lifetime of an upload session item (its TTL), seconds. @default 2 days (lib/storage/aws-resources.ts) */
  uploadTtlSeconds?: number;
}

/**
 * Registry metadata in one DynamoDB table (items and access patterns: keys.ts), talking to DynamoDB only.
 * One module per concern, each with its races drawn: blobs and links (dynamodb-blobs.ts), manifests, tags,
 * referrers and the catalog (dynamodb-manifests.ts), upload sessions (dynamodb-uploads.ts); the requests and
 * their throttling policy in dynamodb-table.ts and throttling.ts.
 *
 * Reads are strongly consistent: clients read what they just pushed (a manifest list's children, a tag right
 * after its push), and an eventually consistent miss would be a spurious 404. The pull path is one GetItem per
 * request; a manifest push checks its references with one BatchGetItem.
 */
export class DynamoDbMetadataStore implements MetadataStore {
  readonly #blobs: DynamoDbBlobs;
  readonly #manifests: DynamoDbManifests;
  readonly #uploads: DynamoDbUploads;

  constructor(options: DynamoDbMetadataStoreOptions) {
    const table = new DynamoDbTable(options.dynamo, options.table);
    this.#blobs = new DynamoDbBlobs(table);
    this.#manifests = new DynamoDbManifests(table, options.bodies);
    this.#uploads = new DynamoDbUploads(table, options.uploadTtlSeconds ?? UPLOAD_SESSION_TTL_SECONDS);
  }

  getBlob(digest: string): Promise<BlobRecord | undefined> {
    return this.#blobs.getBlob(digest);
  }
  putBlob(record: BlobRecord): Promise<BlobRecord> {
    return this.#blobs.putBlob(record);
  }
  getLinkedBlob(name: string, digest: string): Promise<BlobRecord | undefined> {
    return this.#blobs.getLinkedBlob(name, digest);
  }
  linkBlob(name: string, record: BlobRecord): Promise<boolean> {
    return this.#blobs.linkBlob(name, record);
  }
  unlinkBlob(name: string, digest: string): Promise<boolean> {
    return this.#blobs.unlinkBlob(name, digest);
  }
  missingReferences(name: string, references: { blobs: string[]; manifests: string[] }): Promise<string[]> {
    return this.#blobs.missingReferences(name, references);
  }

  getManifest(name: string, digest: string): Promise<StoredManifest | undefined> {
    return this.#manifests.getManifest(name, digest);
  }
  resolveTag(name: string, tag: string): Promise<StoredManifest | undefined> {
    return this.#manifests.resolveTag(name, tag);
  }
  putManifest(name: string, manifest: StoredManifest, tags: string[], options?: PutManifestOptions): Promise<void> {
    return this.#manifests.putManifest(name, manifest, tags, options);
  }
  deleteManifest(name: string, digest: string): Promise<boolean> {
    return this.#manifests.deleteManifest(name, digest);
  }
  deleteTag(name: string, tag: string): Promise<boolean> {
    return this.#manifests.deleteTag(name, tag);
  }
  listTags(name: string, page: PageRequest): Promise<Page<string> | undefined> {
    return this.#manifests.listTags(name, page);
  }
  listRepositories(page: PageRequest): Promise<Page<string>> {
    return this.#manifests.listRepositories(page);
  }
  listReferrers(name: string, subject: string): Promise<Descriptor[]> {
    return this.#manifests.listReferrers(name, subject);
  }

  createUpload(session: UploadSession): Promise<void> {
    return this.#uploads.createUpload(session);
  }
  getUpload(name: string, uploadId: string): Promise<UploadSession | undefined> {
    return this.#uploads.getUpload(name, uploadId);
  }
  updateUpload(next: UploadSession): Promise<void> {
    return this.#uploads.updateUpload(next);
  }
  deleteUpload(name: string, uploadId: string): Promise<void> {
    return this.#uploads.deleteUpload(name, uploadId);
  }
}

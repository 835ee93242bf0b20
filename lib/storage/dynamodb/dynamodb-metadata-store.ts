import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { GcEntry, GcScanSource, ScanPage } from '../../registry/gc/gc-entries.ts';
import type { DeleteOptions, GcStore, ManifestActivity, ManifestBodyStore, MetadataStore, PutManifestOptions } from '../../registry/ports.ts';
import type { BlobRecord, Descriptor, Page, PageRequest, StoredManifest, UploadSession } from '../../registry/types.ts';
import { UPLOAD_SESSION_TTL_SECONDS } from '../aws-resources.ts';
import { DynamoDbBlobs } from './dynamodb-blobs.ts';
import { DynamoDbGcScan } from './dynamodb-gc-scan.ts';
import { DynamoDbManifestBodies } from './dynamodb-manifest-bodies.ts';
import { DynamoDbManifests } from './dynamodb-manifests.ts';
import { DynamoDbPulls } from './dynamodb-pulls.ts';
import { DynamoDbTable } from './dynamodb-table.ts';
import { DynamoDbUploads } from './dynamodb-uploads.ts';
import { ManifestItems } from './manifest-item.ts';

/**
 * How far apart the clocks of the writers (the registry function) and a collector (the gc function, or an
 * administrator's `ocireg gc --stack`) may be. Both sign every request with SigV4, which AWS refuses when the
 * signer's clock is more than 5 minutes off (RequestTimeTooSkewed), so two clocks AWS accepts differ by at most
 * 10 minutes. A larger tolerance only delays collection of what was referenced just before a run; a smaller one
 * than the real skew could doom an item a push referenced after the scan began. Lambda clocks are kept by the
 * Amazon Time Sync Service, far closer than this. (The SDK corrects its *signing* clock after a skew error; the
 * stamps are Date.now(), so a machine that far off must fix its clock: docs/aws-assumptions.md.)
 * @see https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html
 */
export const AWS_CLOCK_TOLERANCE_MS = 10 * 60 * 1000;

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
  /**
   * Garbage collection: the entries a scan continues into after the table (the bucket's stray blob bytes and
   * manifest bodies: S3ObjectScan). @default none, the table only
   */
  objects?: GcScanSource;
  /**
   * Garbage collection: how far apart the writers' and the collector's clocks may be (GcStore.clockToleranceMs).
   * Everything on one machine (dev:aws, DynamoDB Local) shares one clock. @default {@link AWS_CLOCK_TOLERANCE_MS}
   */
  clockToleranceMs?: number;
}

/**
 * Registry metadata in one DynamoDB table (items and access patterns: keys.ts), talking to DynamoDB only.
 * One module per concern, each with its races drawn: blobs and links (dynamodb-blobs.ts), manifests, tags,
 * referrers and the catalog (dynamodb-manifests.ts), upload sessions (dynamodb-uploads.ts), last pulls
 * (dynamodb-pulls.ts); the requests and their throttling policy in dynamodb-table.ts and throttling.ts.
 *
 * Reads are strongly consistent: clients read what they just pushed (a manifest list's children, a tag right
 * after its push), and an eventually consistent miss would be a spurious 404. The pull path is one GetItem per
 * request; a manifest push checks its references with one BatchGetItem.
 */
export class DynamoDbMetadataStore implements MetadataStore, GcStore {
  readonly clockToleranceMs: number;
  readonly #blobs: DynamoDbBlobs;
  readonly #manifests: DynamoDbManifests;
  readonly #uploads: DynamoDbUploads;
  readonly #bodies: DynamoDbManifestBodies;
  readonly #scan: DynamoDbGcScan;
  readonly #pulls: DynamoDbPulls;

  constructor(options: DynamoDbMetadataStoreOptions) {
    const table = new DynamoDbTable(options.dynamo, options.table);
    this.clockToleranceMs = options.clockToleranceMs ?? AWS_CLOCK_TOLERANCE_MS;
    this.#blobs = new DynamoDbBlobs(table);
    this.#bodies = new DynamoDbManifestBodies(table, options.bodies);
    this.#manifests = new DynamoDbManifests(table, options.bodies, this.#bodies);
    this.#pulls = new DynamoDbPulls(table);
    this.#uploads = new DynamoDbUploads(table, options.uploadTtlSeconds ?? UPLOAD_SESSION_TTL_SECONDS);
    this.#scan = new DynamoDbGcScan(table, new ManifestItems(options.bodies), options.objects);
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
  deleteManifest(name: string, digest: string, options?: DeleteOptions): Promise<boolean> {
    return this.#manifests.deleteManifest(name, digest, options);
  }
  deleteTag(name: string, tag: string, digest?: string, options?: DeleteOptions): Promise<boolean> {
    return this.#manifests.deleteTag(name, tag, digest, options);
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

  recordPull(name: string, reference: string, digest: string, at: number): Promise<boolean> {
    return this.#pulls.record(name, reference, digest, at);
  }
  manifestActivity(name: string): Promise<Map<string, ManifestActivity>> {
    return this.#pulls.activity(name);
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

  // ---- garbage collection (GcStore): the race is drawn in lib/registry/gc/collector.ts, the conditions in gc-attributes.ts

  scanStarts(segments: number): string[] {
    return this.#scan.scanStarts(segments);
  }

  scan(cursor: string | undefined, limit: number): Promise<ScanPage<GcEntry>> {
    return this.#scan.scan(cursor, limit);
  }
  doomLink(name: string, digest: string, runId: string, since: number): Promise<boolean> {
    return this.#blobs.doomLink(name, digest, runId, since);
  }
  dropLink(name: string, digest: string, runId: string): Promise<boolean> {
    return this.#blobs.dropLink(name, digest, runId);
  }
  doomBlob(digest: string, runId: string, since: number): Promise<BlobRecord | undefined> {
    return this.#blobs.doomBlob(digest, runId, since);
  }
  dropBlob(record: BlobRecord, runId: string, deleteBytes: (location: string) => Promise<void>): Promise<boolean> {
    return this.#blobs.dropBlob(record, runId, deleteBytes);
  }
  doomManifest(name: string, digest: string, runId: string, since: number): Promise<boolean> {
    return this.#manifests.doomManifest(name, digest, runId, since);
  }
  dropManifest(name: string, digest: string, runId: string): Promise<boolean> {
    return this.#manifests.dropManifest(name, digest, runId);
  }
  doomManifestBody(digest: string, runId: string, since: number): Promise<boolean> {
    return this.#bodies.doom(digest, runId, since);
  }
  dropManifestBody(digest: string, runId: string): Promise<boolean> {
    return this.#bodies.drop(digest, runId);
  }
}

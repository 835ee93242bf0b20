import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { BlobRecord } from '../../registry/types.ts';
import { key, n, s, type Item } from './attribute-values.ts';
import { idOf, type DynamoDbTable } from './dynamodb-table.ts';
import { doomedBy, doomUpdate, GC_ATTRIBUTES } from './gc-attributes.ts';
import { blobRecordKey, linkedBlobKey, manifestItemKey, type ItemKey } from './keys.ts';
import { PK } from './table-definition.ts';

/**
 * Blob records (global, by digest) and their links into repositories. A blob GET or HEAD is one GetItem of the
 * link item, which carries size and location. Concurrent pushes of one blob race on the record:
 * ```
 *   upload A commits blobs/a               upload B commits blobs/b
 *   Put record (a) if absent ✓             Put record (b) if absent ✗ → returns record (a); the core deletes blobs/b
 * ```
 * and an upload races garbage collection of its digest (lib/registry/gc/collector.ts draws the whole timeline):
 * ```
 *   collector run R                        upload C commits blobs/c
 *   Update record doomed = R if unstamped ✓
 *                                          Put record (c) if absent or doomed ✓ (replaces the doomed record)
 *   Delete record if doomed = R ✗          → record (c) stays; blobs/c was never at risk
 *   Delete blobs/a (no record names it)
 * ```
 */
export class DynamoDbBlobs {
  readonly #table: DynamoDbTable;

  constructor(table: DynamoDbTable) {
    this.#table = table;
  }

  async getBlob(digest: string): Promise<BlobRecord | undefined> {
    const item = await this.#table.get(blobRecordKey(digest));
    return item && blobRecordOf(digest, item);
  }

  async putBlob(record: BlobRecord): Promise<BlobRecord> {
    try {
      const now = n(Date.now());
      await this.#table.put({
        Item: { ...key(blobRecordKey(record.digest)), size: n(record.size), location: s(record.location), [GC_ATTRIBUTES.createdAt]: now, [GC_ATTRIBUTES.referencedAt]: now },
        // A doomed record's bytes are being deleted: the new upload (at a location of its own) replaces it.
        ConditionExpression: 'attribute_not_exists(#pk) OR attribute_exists(#doomed)',
        ExpressionAttributeNames: { '#pk': PK, '#doomed': GC_ATTRIBUTES.doomed },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      });
      return record;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const existing = error.Item ?? (await this.#table.get(blobRecordKey(record.digest)));
      if (!existing) throw error;
      return blobRecordOf(record.digest, existing);
    }
  }

  async getLinkedBlob(name: string, digest: string): Promise<BlobRecord | undefined> {
    const item = await this.#table.get(linkedBlobKey(name, digest));
    return item && blobRecordOf(digest, item);
  }

  /**
   * One transaction: stamp the global record (it must exist, not be doomed, and be at the link's location) and put
   * the link, replacing a doomed one. The stamp is what stops a collector that scanned before this link existed from
   * dooming the record (lib/registry/gc/collector.ts).
   */
  async linkBlob(name: string, record: BlobRecord): Promise<boolean> {
    const now = Date.now();
    const failed = await this.#table.transactChecked([
      {
        Update: {
          TableName: this.#table.name,
          Key: key(blobRecordKey(record.digest)),
          UpdateExpression: 'SET #referenced = :now',
          ConditionExpression: 'attribute_exists(#pk) AND attribute_not_exists(#doomed) AND #location = :location',
          ExpressionAttributeNames: { '#pk': PK, '#referenced': GC_ATTRIBUTES.referencedAt, '#doomed': GC_ATTRIBUTES.doomed, '#location': 'location' },
          ExpressionAttributeValues: { ':now': n(now), ':location': s(record.location) },
        },
      },
      {
        Put: {
          TableName: this.#table.name,
          Item: { ...key(linkedBlobKey(name, record.digest)), size: n(record.size), location: s(record.location), [GC_ATTRIBUTES.createdAt]: n(now), [GC_ATTRIBUTES.referencedAt]: n(now) },
        },
      },
    ]);
    return failed === undefined;
  }

  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    return this.#table.delete(linkedBlobKey(name, digest));
  }

  /** Dooms the link unless a push linked it again or referenced it at or after `since` (createdAt, stamps, lease). */
  async doomLink(name: string, digest: string, runId: string, since: number): Promise<boolean> {
    return (await this.#table.updateIf(linkedBlobKey(name, digest), doomUpdate(runId, since, Date.now()))) !== undefined;
  }

  /** Deletes the link if `runId` still dooms it (a re-link Put replaced it otherwise). */
  async dropLink(name: string, digest: string, runId: string): Promise<boolean> {
    return this.#table.deleteIf(linkedBlobKey(name, digest), doomedBy(runId));
  }

  /** Dooms the record unless linked (stamped) at or after `since`; the record as doomed. */
  async doomBlob(digest: string, runId: string, since: number): Promise<BlobRecord | undefined> {
    const item = await this.#table.updateIf(blobRecordKey(digest), doomUpdate(runId, since, Date.now()));
    return item && blobRecordOf(digest, item);
  }

  /**
   * Record first, then bytes: a crash in between leaves bytes no record names (collected later as stray bytes under
   * `blobs/`), never a record without bytes. The old bytes go even when an upload replaced the doomed record meanwhile:
   * the new record is at a location of its own (see the class comment).
   */
  async dropBlob(record: BlobRecord, runId: string, deleteBytes: (location: string) => Promise<void>): Promise<boolean> {
    const deleted = await this.#table.deleteIf(blobRecordKey(record.digest), doomedBy(runId));
    const current = deleted ? undefined : await this.getBlob(record.digest);
    if (current?.location !== record.location) await deleteBytes(record.location);
    return deleted;
  }

  /**
   * A manifest push's reference check: the blob links and child manifest items it needs, read in one
   * BatchGetItem (per 100 keys) instead of one GetItem each; same read units, one round trip.
   */
  async missingReferences(name: string, references: { blobs: string[]; manifests: string[] }): Promise<string[]> {
    const wanted: [ItemKey, string][] = [
      ...references.blobs.map((digest): [ItemKey, string] => [linkedBlobKey(name, digest), digest]),
      ...references.manifests.map((digest): [ItemKey, string] => [manifestItemKey(name, digest), digest]),
    ];
    if (wanted.length === 0) return [];
    const found = await this.#table.existing(wanted.map(([itemKey]) => itemKey));
    const missing = wanted.filter(([itemKey]) => !found.has(idOf(itemKey))).map(([, digest]) => digest);
    return [...new Set(missing)];
  }
}

function blobRecordOf(digest: string, item: Item): BlobRecord {
  return { digest, size: Number(item.size!.N), location: item.location!.S! };
}

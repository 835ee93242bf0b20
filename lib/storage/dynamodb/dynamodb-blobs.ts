import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { BlobRecord } from '../../registry/types.ts';
import { key, n, s, type Item } from './attribute-values.ts';
import { idOf, type DynamoDbTable } from './dynamodb-table.ts';
import { blobRecordKey, linkedBlobKey, manifestItemKey, type ItemKey } from './keys.ts';
import { PK } from './table-definition.ts';

/**
 * Blob records (global, by digest) and their links into repositories. A blob GET or HEAD is one GetItem of the
 * link item, which carries size and location. Concurrent pushes of one blob race on the record:
 * ```
 *   upload A commits blobs/a               upload B commits blobs/b
 *   Put record (a) if absent ✓             Put record (b) if absent ✗ → returns record (a); the core deletes blobs/b
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
      await this.#table.put({
        Item: { ...key(blobRecordKey(record.digest)), size: n(record.size), location: s(record.location) },
        ConditionExpression: 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: { '#pk': PK },
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

  async linkBlob(name: string, record: BlobRecord): Promise<void> {
    await this.#table.put({ Item: { ...key(linkedBlobKey(name, record.digest)), size: n(record.size), location: s(record.location) } });
  }

  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    return this.#table.delete(linkedBlobKey(name, digest));
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

import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { uploadConflict } from '../../registry/errors.ts';
import type { UploadSession } from '../../registry/types.ts';
import { key, n, s, type Item } from './attribute-values.ts';
import type { DynamoDbTable } from './dynamodb-table.ts';
import { uploadKey } from './keys.ts';
import { PK, TTL } from './table-definition.ts';

/**
 * Upload sessions, one item each, expired by TTL. Two PATCHes of one upload race on `version`:
 * ```
 *   PATCH 1                               PATCH 2
 *   GetItem: version v                    GetItem: version v
 *   Put version v+1 if version = v ✓      Put version v+1 if version = v ✗ → uploadConflict (416 RANGE_INVALID)
 * ```
 */
export class DynamoDbUploads {
  readonly #table: DynamoDbTable;
  /** The TTL (epoch seconds) of a session created at `createdAt` (epoch ms). */
  readonly #expiresAt: (createdAt: number) => number;

  constructor(table: DynamoDbTable, ttlSeconds: number) {
    this.#table = table;
    this.#expiresAt = (createdAt) => Math.ceil(createdAt / 1000) + ttlSeconds;
  }

  async createUpload(session: UploadSession): Promise<void> {
    await this.#table.put({ Item: this.#item(session), ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': PK } });
  }

  async getUpload(name: string, uploadId: string): Promise<UploadSession | undefined> {
    const item = await this.#table.get(uploadKey(uploadId));
    if (!item || item.name?.S !== name) return undefined;
    return {
      name,
      uploadId,
      offset: Number(item.offset!.N),
      version: Number(item.version!.N),
      createdAt: Number(item.createdAt!.N),
      storage: JSON.parse(item.storage!.S!),
    };
  }

  async updateUpload(next: UploadSession): Promise<void> {
    try {
      await this.#table.put({
        Item: this.#item(next),
        ConditionExpression: '#version = :expected AND #name = :name',
        ExpressionAttributeNames: { '#version': 'version', '#name': 'name' },
        ExpressionAttributeValues: { ':expected': n(next.version - 1), ':name': s(next.name) },
      });
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw uploadConflict(next.name, next.uploadId);
      throw error;
    }
  }

  async deleteUpload(_name: string, uploadId: string): Promise<void> {
    await this.#table.delete(uploadKey(uploadId));
  }

  #item(session: UploadSession): Item {
    return {
      ...key(uploadKey(session.uploadId)),
      name: s(session.name),
      offset: n(session.offset),
      version: n(session.version),
      createdAt: n(session.createdAt),
      storage: s(JSON.stringify(session.storage)),
      [TTL]: n(this.#expiresAt(session.createdAt)),
    };
  }
}

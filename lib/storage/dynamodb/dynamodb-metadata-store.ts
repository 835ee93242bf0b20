import { randomBytes } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactionCanceledException,
  TransactionConflictException,
  TransactWriteItemsCommand,
  type AttributeValue,
  type DynamoDBClient,
  type QueryCommandInput,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { payloadTooLarge, uploadConflict } from '../../registry/errors.ts';
import type { MetadataStore } from '../../registry/ports.ts';
import { referrerDescriptor, type BlobRecord, type Descriptor, type Page, type PageRequest, type StoredManifest, type UploadSession } from '../../registry/types.ts';
import { UPLOAD_SESSION_TTL_SECONDS } from '../aws-resources.ts';
import { manifestKey } from '../s3/keys.ts';
import {
  blobRecordKey,
  CATALOG_PK,
  catalogKey,
  INLINE_MANIFEST_LIMIT,
  linkedBlobKey,
  MANIFEST_PREFIX,
  manifestItemKey,
  referrerKey,
  referrersPrefix,
  repositoryPartition,
  TAG_PREFIX,
  tagKey,
  tagOf,
  uploadKey,
  type ItemKey,
} from './keys.ts';
import { PK, SK, TTL } from './table-definition.ts';

export interface DynamoDbMetadataStoreOptions {
  dynamo: DynamoDBClient;
  table: string;
  /** Where manifests too large for an item go (over ~350 KB). Without it such manifests are refused with 413. */
  s3?: { client: S3Client; bucket: string };
  /** Lifetime of an upload session item (its TTL), seconds. @default 2 days (lib/storage/aws-resources.ts) */
  uploadTtlSeconds?: number;
}

/** TransactWriteItems takes at most 100 actions and 4 MB: manifests are inlined into tag items only below this total. */
const MAX_TRANSACTION_ITEMS = 100;
const TRANSACTION_BYTES_BUDGET = 3_500_000;
/** Attempts of a transaction that lost to a concurrent one (TransactionConflict) or whose read went stale. */
const TRANSACTION_ATTEMPTS = 8;

type Item = Record<string, AttributeValue>;

/**
 * Registry metadata in one DynamoDB table (items and access patterns: keys.ts). Low-level client only, to keep
 * the Lambda bundle small.
 *
 * Pull path, one read each: a blob by (name, digest) is the link item (it carries size and location); a manifest
 * by tag is the tag item, which embeds the manifest (or, above ~350 KB, its S3 key: one S3 GetObject more); by
 * digest, the manifest item. Reads are strongly consistent: clients read what they just pushed (a manifest list's
 * children, a tag right after its push), and an eventually consistent miss would be a spurious 404.
 *
 * Writes that race:
 * ```
 * putManifest   TransactWrite[ Put manifest (rev = random), Put tag…, Put referrer ]  then Put catalog entry
 * deleteManifest  Get manifest (rev r) → Query tags → TransactWrite[ Delete manifest if rev = r,
 *                 Delete tag… if digest = d, Delete referrer ]; a concurrent push changes rev or moves a tag:
 *                 the transaction is cancelled and retried from the Get
 * ```
 * so a tag never outlives the manifest it embeds, and concurrent pushes of one tag serialise (last writer
 * wins; a transaction cancelled by a conflict is retried). The catalog entry is written after the transaction
 * (a plain put, so concurrent pushes to one repository do not conflict on it) and never removed: a repository
 * whose manifests were all deleted stays listed.
 *
 * Large manifests live in S3 at `manifests/<alg>/<hex>`, shared by every repository; deleting a manifest leaves
 * that object to garbage collection.
 */
export class DynamoDbMetadataStore implements MetadataStore {
  readonly #dynamo: DynamoDBClient;
  readonly #table: string;
  readonly #s3: { client: S3Client; bucket: string } | undefined;
  readonly #uploadTtlSeconds: number;

  constructor(options: DynamoDbMetadataStoreOptions) {
    this.#dynamo = options.dynamo;
    this.#table = options.table;
    this.#s3 = options.s3;
    this.#uploadTtlSeconds = options.uploadTtlSeconds ?? UPLOAD_SESSION_TTL_SECONDS;
  }

  // ---- blobs

  async getBlob(digest: string): Promise<BlobRecord | undefined> {
    const item = await this.#get(blobRecordKey(digest));
    return item && blobRecordOf(digest, item);
  }

  async putBlob(record: BlobRecord): Promise<BlobRecord> {
    try {
      await this.#dynamo.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: { ...key(blobRecordKey(record.digest)), size: n(record.size), location: s(record.location) },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': PK },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return record;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const existing = error.Item ?? (await this.#get(blobRecordKey(record.digest)));
      if (!existing) throw error;
      return blobRecordOf(record.digest, existing);
    }
  }

  async getLinkedBlob(name: string, digest: string): Promise<BlobRecord | undefined> {
    const item = await this.#get(linkedBlobKey(name, digest));
    return item && blobRecordOf(digest, item);
  }

  async linkBlob(name: string, record: BlobRecord): Promise<void> {
    await this.#dynamo.send(
      new PutItemCommand({ TableName: this.#table, Item: { ...key(linkedBlobKey(name, record.digest)), size: n(record.size), location: s(record.location) } }),
    );
  }

  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    return this.#delete(linkedBlobKey(name, digest));
  }

  // ---- manifests and tags

  async getManifest(name: string, digest: string): Promise<StoredManifest | undefined> {
    const item = await this.#get(manifestItemKey(name, digest));
    return item && this.#manifestOf(item);
  }

  async resolveTag(name: string, tag: string): Promise<StoredManifest | undefined> {
    const item = await this.#get(tagKey(name, tag));
    return item && this.#manifestOf(item);
  }

  async putManifest(name: string, manifest: StoredManifest, tags: string[]): Promise<void> {
    const fields = await this.#manifestFields(manifest, tags.length);
    const puts: TransactWriteItem[] = [
      { Put: { TableName: this.#table, Item: { ...key(manifestItemKey(name, manifest.digest)), ...fields, rev: s(randomBytes(8).toString('hex')) } } },
    ];
    if (manifest.subject !== undefined) {
      puts.push({
        Put: { TableName: this.#table, Item: { ...key(referrerKey(name, manifest.subject, manifest.digest)), descriptor: s(JSON.stringify(referrerDescriptor(manifest))) } },
      });
    }
    for (const tag of tags) puts.push({ Put: { TableName: this.#table, Item: { ...key(tagKey(name, tag)), ...fields } } });
    // The manifest and its referrer entry travel in the first transaction, tags beyond the 100-action limit after it.
    for (let at = 0; at < puts.length; at += MAX_TRANSACTION_ITEMS) {
      const batch = puts.slice(at, at + MAX_TRANSACTION_ITEMS);
      await this.#transact(async () => batch);
    }
    await this.#dynamo.send(new PutItemCommand({ TableName: this.#table, Item: key(catalogKey(name)) }));
  }

  async deleteManifest(name: string, digest: string): Promise<boolean> {
    let found = true;
    await this.#transact(async () => {
      const manifest = await this.#get(manifestItemKey(name, digest), '#rev, #subject', { '#rev': 'rev', '#subject': 'subject' });
      if (!manifest) {
        found = false;
        return [];
      }
      const tags = await this.#query(
        {
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
          FilterExpression: '#digest = :digest',
          ProjectionExpression: '#sk',
          ExpressionAttributeNames: { '#pk': PK, '#sk': SK, '#digest': 'digest' },
          ExpressionAttributeValues: { ':pk': s(repositoryPartition(name)), ':prefix': s(TAG_PREFIX), ':digest': s(digest) },
        },
        undefined,
      );
      const deletes: TransactWriteItem[] = [
        {
          Delete: {
            TableName: this.#table,
            Key: key(manifestItemKey(name, digest)),
            ConditionExpression: '#rev = :rev',
            ExpressionAttributeNames: { '#rev': 'rev' },
            ExpressionAttributeValues: { ':rev': manifest.rev ?? s('') },
          },
        },
      ];
      const subject = manifest.subject?.S;
      if (subject !== undefined) deletes.push({ Delete: { TableName: this.#table, Key: key(referrerKey(name, subject, digest)) } });
      for (const tag of tags.items) {
        deletes.push({
          Delete: {
            TableName: this.#table,
            Key: key(tagKey(name, tagOf(tag[SK]!.S!))),
            ConditionExpression: '#digest = :digest',
            ExpressionAttributeNames: { '#digest': 'digest' },
            ExpressionAttributeValues: { ':digest': s(digest) },
          },
        });
      }
      // Over 100 actions (a manifest with ~100 tags): the tags beyond go first, each still conditional.
      while (deletes.length > MAX_TRANSACTION_ITEMS) {
        const extra = deletes.splice(MAX_TRANSACTION_ITEMS - 1);
        for (let at = 0; at < extra.length; at += MAX_TRANSACTION_ITEMS) {
          await this.#sendTransaction(extra.slice(at, at + MAX_TRANSACTION_ITEMS)).catch((error: unknown) => {
            if (!(error instanceof TransactionCanceledException)) throw error;
          });
        }
      }
      return deletes;
    });
    return found;
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    return this.#delete(tagKey(name, tag));
  }

  async listTags(name: string, page: PageRequest): Promise<Page<string> | undefined> {
    const result = await this.#query(
      {
        KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
        ProjectionExpression: '#sk',
        ExpressionAttributeNames: { '#pk': PK, '#sk': SK },
        ExpressionAttributeValues: { ':pk': s(repositoryPartition(name)), ':prefix': s(TAG_PREFIX) },
        ...(page.last !== undefined ? { ExclusiveStartKey: key(tagKey(name, page.last)) } : {}),
      },
      page.limit,
    );
    if (result.items.length === 0 && !result.hasMore && !(await this.#holdsManifests(name))) return undefined;
    return { items: result.items.map((item) => tagOf(item[SK]!.S!)), hasMore: result.hasMore };
  }

  async listRepositories(page: PageRequest): Promise<Page<string>> {
    const result = await this.#query(
      {
        KeyConditionExpression: '#pk = :pk',
        ProjectionExpression: '#sk',
        ExpressionAttributeNames: { '#pk': PK, '#sk': SK },
        ExpressionAttributeValues: { ':pk': s(CATALOG_PK) },
        ...(page.last !== undefined ? { ExclusiveStartKey: key(catalogKey(page.last)) } : {}),
      },
      page.limit,
    );
    return { items: result.items.map((item) => item[SK]!.S!), hasMore: result.hasMore };
  }

  async listReferrers(name: string, subject: string): Promise<Descriptor[]> {
    const result = await this.#query(
      {
        KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
        ExpressionAttributeNames: { '#pk': PK, '#sk': SK },
        ExpressionAttributeValues: { ':pk': s(repositoryPartition(name)), ':prefix': s(referrersPrefix(subject)) },
      },
      undefined,
    );
    return result.items.flatMap((item) => (item.descriptor?.S !== undefined ? [JSON.parse(item.descriptor.S) as Descriptor] : []));
  }

  // ---- uploads

  async createUpload(session: UploadSession): Promise<void> {
    await this.#dynamo.send(
      new PutItemCommand({
        TableName: this.#table,
        Item: this.#uploadItem(session),
        ConditionExpression: 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: { '#pk': PK },
      }),
    );
  }

  async getUpload(name: string, uploadId: string): Promise<UploadSession | undefined> {
    const item = await this.#get(uploadKey(uploadId));
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
      await this.#dynamo.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: this.#uploadItem(next),
          ConditionExpression: '#version = :expected AND #name = :name',
          ExpressionAttributeNames: { '#version': 'version', '#name': 'name' },
          ExpressionAttributeValues: { ':expected': n(next.version - 1), ':name': s(next.name) },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw uploadConflict(next.name, next.uploadId);
      throw error;
    }
  }

  async deleteUpload(_name: string, uploadId: string): Promise<void> {
    await this.#dynamo.send(new DeleteItemCommand({ TableName: this.#table, Key: key(uploadKey(uploadId)) }));
  }

  // ---- internals

  #uploadItem(session: UploadSession): Item {
    return {
      ...key(uploadKey(session.uploadId)),
      name: s(session.name),
      offset: n(session.offset),
      version: n(session.version),
      createdAt: n(session.createdAt),
      storage: s(JSON.stringify(session.storage)),
      [TTL]: n(Math.ceil(session.createdAt / 1000) + this.#uploadTtlSeconds),
    };
  }

  /** The attributes a manifest item and its tag items share; puts the bytes in S3 when they would not fit. */
  async #manifestFields(manifest: StoredManifest, tagCount: number): Promise<Item> {
    const fields: Item = { digest: s(manifest.digest), mediaType: s(manifest.mediaType), size: n(manifest.content.byteLength) };
    if (manifest.subject !== undefined) fields.subject = s(manifest.subject);
    if (manifest.artifactType !== undefined) fields.artifactType = s(manifest.artifactType);
    if (manifest.annotations !== undefined) fields.annotations = s(JSON.stringify(manifest.annotations));
    const overhead = 400 + Object.values(fields).reduce((total, value) => total + (value.S?.length ?? 0), 0);
    if (overhead > INLINE_MANIFEST_LIMIT / 2) {
      throw payloadTooLarge(`manifest annotations of ${overhead} bytes exceed the ${INLINE_MANIFEST_LIMIT / 2} bytes this registry indexes`, { digest: manifest.digest });
    }
    const inlineBytes = manifest.content.byteLength + overhead;
    if (inlineBytes <= INLINE_MANIFEST_LIMIT && inlineBytes * (2 + tagCount) <= TRANSACTION_BYTES_BUDGET) {
      fields.content = { B: manifest.content };
      return fields;
    }
    if (!this.#s3) {
      throw payloadTooLarge(`manifest of ${manifest.content.byteLength} bytes is too large for a DynamoDB item and no S3 bucket is configured for large manifests`);
    }
    const contentKey = manifestKey(manifest.digest);
    const [algorithm, hex] = manifest.digest.split(':', 2) as [string, string];
    await this.#s3.client.send(
      new PutObjectCommand({
        Bucket: this.#s3.bucket,
        Key: contentKey,
        Body: manifest.content,
        ContentLength: manifest.content.byteLength,
        ContentType: manifest.mediaType,
        ...(algorithm === 'sha256' ? { ChecksumSHA256: Buffer.from(hex, 'hex').toString('base64') } : {}),
      }),
    );
    fields.contentKey = s(contentKey);
    return fields;
  }

  async #manifestOf(item: Item): Promise<StoredManifest> {
    let content = item.content?.B;
    if (content === undefined) {
      const contentKey = item.contentKey?.S;
      if (contentKey === undefined || !this.#s3) throw new Error(`manifest item ${item[PK]?.S} ${item[SK]?.S} has no content${contentKey ? ' and no S3 bucket is configured' : ''}`);
      const { Body } = await this.#s3.client.send(new GetObjectCommand({ Bucket: this.#s3.bucket, Key: contentKey }));
      content = Body ? await Body.transformToByteArray() : new Uint8Array();
    }
    const manifest: StoredManifest = { digest: item.digest!.S!, mediaType: item.mediaType!.S!, content };
    if (item.subject?.S !== undefined) manifest.subject = item.subject.S;
    if (item.artifactType?.S !== undefined) manifest.artifactType = item.artifactType.S;
    if (item.annotations?.S !== undefined) manifest.annotations = JSON.parse(item.annotations.S) as Record<string, string>;
    return manifest;
  }

  async #holdsManifests(name: string): Promise<boolean> {
    const { Items } = await this.#dynamo.send(
      new QueryCommand({
        TableName: this.#table,
        KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
        ProjectionExpression: '#sk',
        ExpressionAttributeNames: { '#pk': PK, '#sk': SK },
        ExpressionAttributeValues: { ':pk': s(repositoryPartition(name)), ':prefix': s(MANIFEST_PREFIX) },
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    return (Items?.length ?? 0) > 0;
  }

  /**
   * Runs a Query to at most `limit` items (all when undefined), following pages: a page ends at 1 MB read even
   * below Limit. Asks for one item more than `limit` to know whether more follow.
   */
  async #query(input: Omit<QueryCommandInput, 'TableName'>, limit: number | undefined): Promise<{ items: Item[]; hasMore: boolean }> {
    const items: Item[] = [];
    let start = input.ExclusiveStartKey;
    for (;;) {
      const want = limit === undefined ? undefined : limit + 1 - items.length;
      const page = await this.#dynamo.send(
        new QueryCommand({ ...input, TableName: this.#table, ConsistentRead: true, ...(want !== undefined ? { Limit: want } : {}), ...(start ? { ExclusiveStartKey: start } : { ExclusiveStartKey: undefined }) }),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
      if (!start || (limit !== undefined && items.length > limit)) break;
    }
    if (limit !== undefined && items.length > limit) return { items: items.slice(0, limit), hasMore: true };
    return { items, hasMore: false };
  }

  /**
   * Builds and sends a transaction, again while it is cancelled by a concurrent one (TransactionConflict) or by
   * a condition that a concurrent write made false (the build step reads afresh). No actions: nothing to do.
   */
  async #transact(build: () => Promise<TransactWriteItem[]>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const actions = await build();
      if (actions.length === 0) return;
      try {
        await this.#sendTransaction(actions);
        return;
      } catch (error) {
        const retryable =
          error instanceof TransactionConflictException ||
          (error instanceof TransactionCanceledException &&
            (error.CancellationReasons ?? []).some((reason) => reason.Code === 'TransactionConflict' || reason.Code === 'ConditionalCheckFailed'));
        if (!retryable || attempt >= TRANSACTION_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 25 * 2 ** attempt));
      }
    }
  }

  async #sendTransaction(actions: TransactWriteItem[]): Promise<void> {
    await this.#dynamo.send(new TransactWriteItemsCommand({ TransactItems: actions }));
  }

  async #get(itemKey: ItemKey, projection?: string, names?: Record<string, string>): Promise<Item | undefined> {
    const { Item } = await this.#dynamo.send(
      new GetItemCommand({
        TableName: this.#table,
        Key: key(itemKey),
        ConsistentRead: true,
        ...(projection ? { ProjectionExpression: projection, ExpressionAttributeNames: names } : {}),
      }),
    );
    return Item;
  }

  async #delete(itemKey: ItemKey): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        const { Attributes } = await this.#dynamo.send(new DeleteItemCommand({ TableName: this.#table, Key: key(itemKey), ReturnValues: 'ALL_OLD' }));
        return Attributes !== undefined;
      } catch (error) {
        // A tag or manifest inside a running transaction refuses plain writes for a moment.
        if (!(error instanceof TransactionConflictException) || attempt >= TRANSACTION_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 25 * 2 ** attempt));
      }
    }
  }
}

function key(itemKey: ItemKey): Item {
  return { [PK]: s(itemKey.pk), [SK]: s(itemKey.sk) };
}

function s(value: string): AttributeValue {
  return { S: value };
}

function n(value: number): AttributeValue {
  return { N: String(value) };
}

function blobRecordOf(digest: string, item: Item): BlobRecord {
  return { digest, size: Number(item.size!.N), location: item.location!.S! };
}

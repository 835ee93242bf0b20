import { randomBytes } from 'node:crypto';
import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { TagFixedConflict, type ManifestBodyStore, type PutManifestOptions } from '../../registry/ports.ts';
import { referrerDescriptor, type Descriptor, type Page, type PageRequest, type StoredManifest } from '../../registry/types.ts';
import { key, s } from './attribute-values.ts';
import { MAX_TRANSACTION_ITEMS, type DynamoDbTable } from './dynamodb-table.ts';
import { CATALOG_PK, catalogKey, MANIFEST_PREFIX, manifestItemKey, referrerKey, referrersPrefix, repositoryPartition, TAG_PREFIX, tagKey, tagOf } from './keys.ts';
import { ManifestItems } from './manifest-item.ts';
import { PK, SK } from './table-definition.ts';

/**
 * Manifests, tags, referrers and the catalog in the metadata table (items: keys.ts).
 *
 * Pull path, one read each: a manifest by tag is the tag item, which embeds the manifest (or, above ~350 KB,
 * names it: one read of the body store more); by digest, the manifest item.
 *
 * Writes that race:
 * ```
 * putManifest     [bodies.put] → TransactWrite[ Put manifest (rev = random), Put referrer, Put tag… ]
 *                 then Put catalog entry
 * deleteManifest  Get manifest (rev r) → Query tags → TransactWrite[ Delete manifest if rev = r,
 *                 Delete tag… if digest = d, Delete referrer ]; a concurrent push changes rev or moves a tag:
 *                 the transaction is cancelled and retried from the Get
 *
 *   push A (tag t → d)              delete d
 *   ─────────────────────────────   ──────────────────────────────────────────
 *                                   Get manifest d: rev r1; Query: tags [old]
 *   TransactWrite: manifest d rev r2,
 *     tag t → d
 *                                   TransactWrite: Delete d if rev = r1 ✗ cancelled (ConditionalCheckFailed)
 *                                   Get manifest d: rev r2; Query: tags [old, t]
 *                                   TransactWrite: Delete d if rev = r2, Delete old, t if digest = d ✓
 * ```
 * so a tag never outlives the manifest it embeds, and concurrent pushes of one tag serialise (last writer
 * wins; a transaction cancelled by a conflict is retried). A transaction cancelled for throughput
 * (ThrottlingError) is resent as it was, then answered 429 (throttling.ts). The catalog entry is written after
 * the transaction (a plain put, so concurrent pushes to one repository do not conflict on it) and never removed:
 * a repository whose manifests were all deleted stays listed.
 *
 * Large manifest bodies are shared by every repository (content-addressed); deleting a manifest leaves its
 * body to garbage collection.
 */
export class DynamoDbManifests {
  readonly #table: DynamoDbTable;
  readonly #items: ManifestItems;

  constructor(table: DynamoDbTable, bodies: ManifestBodyStore | undefined) {
    this.#table = table;
    this.#items = new ManifestItems(bodies);
  }

  async getManifest(name: string, digest: string): Promise<StoredManifest | undefined> {
    const item = await this.#table.get(manifestItemKey(name, digest));
    return item && this.#items.manifestOf(item);
  }

  async resolveTag(name: string, tag: string): Promise<StoredManifest | undefined> {
    const item = await this.#table.get(tagKey(name, tag));
    return item && this.#items.manifestOf(item);
  }

  /**
   * Fixed (immutable) tags are Put on condition that the tag is absent or already at this digest, in the same
   * transaction as the manifest: a push that would move one is cancelled whole and answered with TagFixedConflict.
   *
   *   push A (t → a)                          push B (t → b)
   *   ─────────────────────────────────────   ─────────────────────────────────────
   *   TransactWrite[ manifest a, tag t → a
   *     if absent or digest = a ] ✓
   *                                           TransactWrite[ manifest b, tag t → b
   *                                             if absent or digest = b ] ✗ ConditionalCheckFailed
   *                                           Get tag t → a: TagFixedConflict(t, a); manifest b was not written
   */
  async putManifest(name: string, manifest: StoredManifest, tags: string[], options: PutManifestOptions = {}): Promise<void> {
    const table = this.#table.name;
    const fixed = new Set(options.fixedTags ?? []);
    const fields = await this.#items.fields(manifest, tags.length);
    const puts: TransactWriteItem[] = [{ Put: { TableName: table, Item: { ...key(manifestItemKey(name, manifest.digest)), ...fields, rev: s(randomBytes(8).toString('hex')) } } }];
    if (manifest.subject !== undefined) {
      puts.push({ Put: { TableName: table, Item: { ...key(referrerKey(name, manifest.subject, manifest.digest)), descriptor: s(JSON.stringify(referrerDescriptor(manifest))) } } });
    }
    // Fixed tags first, so they travel with the manifest in the first transaction.
    for (const tag of [...tags].sort((a, b) => Number(fixed.has(b)) - Number(fixed.has(a)))) {
      const put: TransactWriteItem['Put'] = { TableName: table, Item: { ...key(tagKey(name, tag)), ...fields } };
      if (fixed.has(tag)) {
        put.ConditionExpression = 'attribute_not_exists(#pk) OR #digest = :digest';
        put.ExpressionAttributeNames = { '#pk': PK, '#digest': 'digest' };
        put.ExpressionAttributeValues = { ':digest': s(manifest.digest) };
      }
      puts.push({ Put: put });
    }
    // The manifest and its referrer entry travel in the first transaction, tags beyond the 100-action limit after it.
    for (let at = 0; at < puts.length; at += MAX_TRANSACTION_ITEMS) {
      const batch = puts.slice(at, at + MAX_TRANSACTION_ITEMS);
      try {
        await this.#table.transact(async () => batch, (error) => fixed.size > 0 && isConditionFailure(error));
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        for (const tag of fixed) {
          const current = (await this.#table.get(tagKey(name, tag), { expression: '#digest', names: { '#digest': 'digest' } }))?.digest?.S;
          if (current !== undefined && current !== manifest.digest) throw new TagFixedConflict(tag, current);
        }
        // The tag was deleted (or set to this digest) since the condition failed: push again.
        return this.putManifest(name, manifest, tags, options);
      }
    }
    await this.#table.put({ Item: key(catalogKey(name)) });
  }

  async deleteManifest(name: string, digest: string): Promise<boolean> {
    const table = this.#table.name;
    let found = true;
    await this.#table.transact(async () => {
      const manifest = await this.#table.get(manifestItemKey(name, digest), { expression: '#rev, #subject', names: { '#rev': 'rev', '#subject': 'subject' } });
      if (!manifest) {
        found = false;
        return [];
      }
      const tags = await this.#table.query({
        KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
        FilterExpression: '#digest = :digest',
        ProjectionExpression: '#sk',
        ExpressionAttributeNames: { '#pk': PK, '#sk': SK, '#digest': 'digest' },
        ExpressionAttributeValues: { ':pk': s(repositoryPartition(name)), ':prefix': s(TAG_PREFIX), ':digest': s(digest) },
      });
      const deletes: TransactWriteItem[] = [
        {
          Delete: {
            TableName: table,
            Key: key(manifestItemKey(name, digest)),
            ConditionExpression: '#rev = :rev',
            ExpressionAttributeNames: { '#rev': 'rev' },
            ExpressionAttributeValues: { ':rev': manifest.rev ?? s('') },
          },
        },
      ];
      const subject = manifest.subject?.S;
      if (subject !== undefined) deletes.push({ Delete: { TableName: table, Key: key(referrerKey(name, subject, digest)) } });
      for (const tag of tags.items) {
        deletes.push({
          Delete: {
            TableName: table,
            Key: key(tagKey(name, tagOf(tag[SK]!.S!))),
            ConditionExpression: '#digest = :digest',
            ExpressionAttributeNames: { '#digest': 'digest' },
            ExpressionAttributeValues: { ':digest': s(digest) },
          },
        });
      }
      // Over 100 actions (a manifest with ~100 tags): the tags beyond go first, each still conditional; one whose
      // condition failed (the tag moved meanwhile) is left alone.
      while (deletes.length > MAX_TRANSACTION_ITEMS) {
        const extra = deletes.splice(MAX_TRANSACTION_ITEMS - 1);
        for (let at = 0; at < extra.length; at += MAX_TRANSACTION_ITEMS) {
          await this.#table.transactWrite(extra.slice(at, at + MAX_TRANSACTION_ITEMS)).catch((error: unknown) => {
            if (!(error instanceof Error && error.name === 'TransactionCanceledException')) throw error;
          });
        }
      }
      return deletes;
    });
    return found;
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    return this.#table.delete(tagKey(name, tag));
  }

  async listTags(name: string, page: PageRequest): Promise<Page<string> | undefined> {
    const result = await this.#table.query(
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
    const result = await this.#table.query(
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
    const result = await this.#table.query({
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeNames: { '#pk': PK, '#sk': SK },
      ExpressionAttributeValues: { ':pk': s(repositoryPartition(name)), ':prefix': s(referrersPrefix(subject)) },
    });
    return result.items.flatMap((item) => (item.descriptor?.S !== undefined ? [JSON.parse(item.descriptor.S) as Descriptor] : []));
  }

  async #holdsManifests(name: string): Promise<boolean> {
    // Limit 0 asks DynamoDB for one item (Limit 1): whether there is more than none.
    const { hasMore } = await this.#table.query(
      {
        KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
        ProjectionExpression: '#sk',
        ExpressionAttributeNames: { '#pk': PK, '#sk': SK },
        ExpressionAttributeValues: { ':pk': s(repositoryPartition(name)), ':prefix': s(MANIFEST_PREFIX) },
      },
      0,
    );
    return hasMore;
  }
}

/** A transaction cancelled because a condition failed (not for a conflict or throughput). */
function isConditionFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'TransactionCanceledException' && ((error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? []).some((reason) => reason.Code === 'ConditionalCheckFailed');
}

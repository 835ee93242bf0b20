import { randomBytes } from 'node:crypto';
import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { TagFixedConflict, type DeleteOptions, type ManifestBodyStore, type PutManifestOptions } from '../../registry/ports.ts';
import type { HistoryWrite } from '../../registry/tag-history.ts';
import { referrerDescriptor, type Descriptor, type Page, type PageRequest, type StoredManifest } from '../../registry/types.ts';
import { manifestBlobUnknown } from '../../registry/errors.ts';
import { key, n, s, type Item } from './attribute-values.ts';
import { DynamoDbManifestBodies } from './dynamodb-manifest-bodies.ts';
import { assertLeaseHolds, leaseReferences, referenceActions } from './dynamodb-references.ts';
import { doomedBy, doomUpdate, GC_ATTRIBUTES } from './gc-attributes.ts';
import { MAX_TRANSACTION_ITEMS, type DynamoDbTable } from './dynamodb-table.ts';
import { DynamoDbTagWrites, tagBatches } from './dynamodb-tag-writes.ts';
import { backoff } from './throttling.ts';
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
 *                 then Put catalog entry; with history, each tag Put beside its history item's Put, both
 *                 conditional on what was read just before (dynamodb-tag-writes.ts)
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
 * With history, each tag Delete travels with its history item's Put (conditional on its `rev`), so a tag deleted
 * with its manifest always has its `deleted` change, and a cancelled transaction writes neither.
 * so a tag never outlives the manifest it embeds, and concurrent pushes of one tag serialise (last writer
 * wins; a transaction cancelled by a conflict is retried). A transaction cancelled for throughput
 * (ThrottlingError) is resent as it was, then answered 429 (throttling.ts). The catalog entry is written after
 * the transaction (a plain put, so concurrent pushes to one repository do not conflict on it) and never removed:
 * a repository whose manifests were all deleted stays listed.
 *
 * Large manifest bodies are shared by every repository (content-addressed); deleting a manifest leaves its
 * body to garbage collection.
 *
 * Garbage collection (lib/registry/gc/collector.ts draws the race): a push's first transaction also stamps every
 * item the manifest references (its blob links, its child manifests; dynamodb-references.ts) and the guard of its
 * stored body (dynamodb-manifest-bodies.ts), each on condition that it exists and is not doomed, so the manifest is
 * stored with all of them or not at all (MANIFEST_BLOB_UNKNOWN). A manifest item carries `createdAt`: a run that
 * missed the push does not doom it. More references than the transaction holds: leased first
 * (dynamodb-references.ts `leaseReferences`).
 */
export class DynamoDbManifests {
  readonly #table: DynamoDbTable;
  readonly #items: ManifestItems;
  readonly #bodies: DynamoDbManifestBodies;
  readonly #tags: DynamoDbTagWrites;

  constructor(table: DynamoDbTable, bodies: ManifestBodyStore | undefined, bodyGuards: DynamoDbManifestBodies) {
    this.#table = table;
    this.#items = new ManifestItems(bodies);
    this.#bodies = bodyGuards;
    this.#tags = new DynamoDbTagWrites(table);
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
  async putManifest(name: string, manifest: StoredManifest, tags: string[], options: PutManifestOptions = {}, attempt = 1): Promise<void> {
    const table = this.#table.name;
    const fixed = new Set(options.fixedTags ?? []);
    const { history } = options;
    // With history every tag is two actions (the tag, its history item), never split between transactions.
    const perTag = history ? 2 : 1;
    const now = Date.now();
    let bodyGen: string | undefined;
    const fields = await this.#items.fields(manifest, tags.length, async () => {
      bodyGen = await this.#bodies.reserve(manifest.digest);
    });
    const manifestItem = { ...key(manifestItemKey(name, manifest.digest)), ...fields, rev: s(randomBytes(8).toString('hex')), [GC_ATTRIBUTES.createdAt]: n(now) };
    const first: TransactWriteItem[] = [{ Put: { TableName: table, Item: manifestItem } }];
    if (manifest.subject !== undefined) {
      first.push({ Put: { TableName: table, Item: { ...key(referrerKey(name, manifest.subject, manifest.digest)), descriptor: s(JSON.stringify(referrerDescriptor(manifest))) } } });
    }
    const bodyAt = bodyGen === undefined ? -1 : first.push(this.#bodies.stamp(manifest.digest, bodyGen, now)) - 1;
    const references = options.references ?? { blobs: [], manifests: [] };
    let stamps = referenceActions(table, name, references, GC_ATTRIBUTES.referencedAt, now);
    let leaseEnd: number | undefined;
    if (first.length + stamps.length + fixed.size * perTag > MAX_TRANSACTION_ITEMS) {
      leaseEnd = await leaseReferences(this.#table, name, references);
      stamps = [];
    }
    const stampsAt = first.length;
    first.push(...stamps.map(({ action }) => action));
    // Fixed tags first, so they travel with the manifest in the first transaction. With history the tags are read
    // here (a fixed tag found elsewhere throws TagFixedConflict) and each action is conditional on what was read.
    const ordered = [...new Set(tags)].sort((a, b) => Number(fixed.has(b)) - Number(fixed.has(a)));
    const [inline, ...rest] = tagBatches(ordered, first.length, perTag);
    const tagsAt = first.length;
    first.push(...(await this.#tags.point(name, manifest.digest, fields, inline!, fixed, history)).flat());
    if (leaseEnd !== undefined) assertLeaseHolds(leaseEnd);
    const failed = await this.#table.transactChecked(first);
    if (failed !== undefined) {
      if (failed >= stampsAt && failed < tagsAt) throw manifestBlobUnknown(stamps[failed - stampsAt]!.digest);
      if (failed === bodyAt && attempt < 5) return this.putManifest(name, manifest, tags, options, attempt + 1);
      for (const tag of fixed) {
        const current = (await this.#table.get(tagKey(name, tag), { expression: '#digest', names: { '#digest': 'digest' } }))?.digest?.S;
        if (current !== undefined && current !== manifest.digest) throw new TagFixedConflict(tag, current);
      }
      // The tag was deleted (or set to this digest, or, with history, moved by a concurrent push) since it was read:
      // push again. Concurrent pushes of one tag with history serialise here: back off a little more each time.
      const attempts = history ? 10 : 5;
      if (attempt < attempts) {
        if (history) await backoff(attempt, 25);
        return this.putManifest(name, manifest, tags, options, attempt + 1);
      }
      throw new Error(`manifest ${name}@${manifest.digest}: its transaction kept failing a condition`);
    }
    // Tags beyond the 100-action limit after it (fixed ones beyond it lose their guarantee: ~97 fixed tags in one
    // push), each transaction built again from fresh reads while a tag it holds moves.
    for (const batch of rest) await this.#table.transact(async () => (await this.#tags.point(name, manifest.digest, fields, batch, fixed, history)).flat());
    await this.#table.put({ Item: key(catalogKey(name)) });
  }

  async deleteManifest(name: string, digest: string, options: DeleteOptions = {}): Promise<boolean> {
    const condition = (item: Item): DeleteCondition => ({
      ConditionExpression: '#rev = :rev',
      ExpressionAttributeNames: { '#rev': 'rev' },
      ExpressionAttributeValues: { ':rev': item.rev ?? s('') },
    });
    return this.#deleteManifest(name, digest, condition, options.history);
  }

  /** Garbage collection: deletes the manifest as deleteManifest does, only while run `runId` dooms it. */
  async dropManifest(name: string, digest: string, runId: string): Promise<boolean> {
    return this.#deleteManifest(name, digest, (item) => (item[GC_ATTRIBUTES.doomed]?.S === runId ? doomedBy(runId) : undefined));
  }

  /** Dooms a manifest item for run `runId` unless it was pushed, or referenced by a push, at or after `since`. */
  async doomManifest(name: string, digest: string, runId: string, since: number): Promise<boolean> {
    return (await this.#table.updateIf(manifestItemKey(name, digest), doomUpdate(runId, since, Date.now()))) !== undefined;
  }

  /**
   * Deletes a manifest, its tags and its referrer entry in one transaction whose manifest delete carries
   * `condition(item)` (undefined: leave it, false); a concurrent push changes the item and the whole is retried.
   * With `history`, each tag's `deleted` change travels with its delete.
   */
  async #deleteManifest(name: string, digest: string, condition: (item: Item) => DeleteCondition | undefined, history?: HistoryWrite): Promise<boolean> {
    const table = this.#table.name;
    let found = true;
    await this.#table.transact(async () => {
      const manifest = await this.#table.get(manifestItemKey(name, digest), {
        expression: '#rev, #subject, #doomed',
        names: { '#rev': 'rev', '#subject': 'subject', '#doomed': GC_ATTRIBUTES.doomed },
      });
      const guard = manifest && condition(manifest);
      if (!guard) {
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
      const deletes: TransactWriteItem[] = [{ Delete: { TableName: table, Key: key(manifestItemKey(name, digest)), ...guard } }];
      const subject = manifest.subject?.S;
      if (subject !== undefined) deletes.push({ Delete: { TableName: table, Key: key(referrerKey(name, subject, digest)) } });
      const names = tags.items.map((tag) => tagOf(tag[SK]!.S!));
      // Over 100 actions (a manifest with ~100 tags, ~50 with history): the tags beyond go first, each still
      // conditional on pointing here; one that moved meanwhile is left alone.
      const [inline, ...extra] = tagBatches(names, deletes.length, history ? 2 : 1);
      for (const batch of extra) await this.#deleteTagsAt(name, digest, batch, history);
      if (history) for (const actions of await Promise.all(inline!.map((tag) => this.#tags.remove(name, tag, digest, history)))) deletes.push(...(actions ?? []));
      else for (const tag of inline!) deletes.push({ Delete: { TableName: table, Key: key(tagKey(name, tag)), ...whileAtDigest(digest) } });
      return deletes;
    });
    return found;
  }

  /**
   * Deletes a tag, with `digest` only while it points there; with history, its `deleted` change in the same
   * transaction (read and written again while the tag or its history moves).
   */
  async deleteTag(name: string, tag: string, digest?: string, options: DeleteOptions = {}): Promise<boolean> {
    const { history } = options;
    if (!history) {
      if (digest === undefined) return this.#table.delete(tagKey(name, tag));
      return this.#table.deleteIf(tagKey(name, tag), whileAtDigest(digest));
    }
    let found = true;
    await this.#table.transact(async () => {
      const actions = await this.#tags.remove(name, tag, digest, history);
      found = actions !== undefined;
      return actions ?? [];
    });
    return found;
  }

  /** Deletes each of `tags` that still points at `digest` (with history, each with its entry), outside the manifest's transaction. */
  async #deleteTagsAt(name: string, digest: string, tags: string[], history: HistoryWrite | undefined): Promise<void> {
    if (history) {
      await Promise.all(tags.map((tag) => this.#table.transact(async () => (await this.#tags.remove(name, tag, digest, history)) ?? [])));
      return;
    }
    const deletes = tags.map((tag): TransactWriteItem => ({ Delete: { TableName: this.#table.name, Key: key(tagKey(name, tag)), ...whileAtDigest(digest) } }));
    await this.#table.transactWrite(deletes).catch((error: unknown) => {
      if (!(error instanceof Error && error.name === 'TransactionCanceledException')) throw error;
    });
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

type DeleteCondition = Pick<NonNullable<TransactWriteItem['Delete']>, 'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'>;

function whileAtDigest(digest: string): DeleteCondition {
  return { ConditionExpression: '#digest = :digest', ExpressionAttributeNames: { '#digest': 'digest' }, ExpressionAttributeValues: { ':digest': s(digest) } };
}

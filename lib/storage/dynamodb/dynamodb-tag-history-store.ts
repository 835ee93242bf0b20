import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DEFAULT_HISTORY_DEPTH, withChange, type TagChange, type TagHistoryStore } from '../../registry/tag-history.ts';
import { key, s, type Item } from './attribute-values.ts';
import { DynamoDbTable } from './dynamodb-table.ts';
import { HISTORY_PREFIX, historyOf, repositoryPartition, tagHistoryKey, type ItemKey } from './keys.ts';
import { PK, SK } from './table-definition.ts';

/** How often an append retries after losing a compare-and-set to a concurrent change of the same tag. */
const APPEND_ATTEMPTS = 8;

/**
 * Tag history in the metadata table: one item per tag (`REPO#<name>` / `HISTORY#<tag>`), its kept changes as a JSON
 * list, newest first, trimmed to `depth` (10 changes are ~3 KB). Appends are a compare-and-set on `rev`:
 * ```
 *   change A of t                         change B of t
 *   ────────────────────────────────────  ────────────────────────────────────
 *   Get HISTORY#t: rev r1, [c1]
 *                                         Get HISTORY#t: rev r1, [c1]
 *   Put [A, c1], rev r2 if rev = r1 ✓
 *                                         Put [B, c1], rev r3 if rev = r1 ✗ → Get again: rev r2, [A, c1]
 *                                         Put [B, A, c1], rev r4 if rev = r2 ✓
 * ```
 * The registry's tag writes put the history item in the tag's own transaction, with the same condition on `rev`
 * (dynamodb-tag-writes.ts); `append` is for changes already committed. Listing a repository's history is one Query
 * (begins_with HISTORY#).
 */
export class DynamoDbTagHistoryStore implements TagHistoryStore {
  readonly depth: number;
  readonly #table: DynamoDbTable;

  constructor(options: { dynamo: DynamoDBClient; table: string; depth?: number }) {
    this.#table = new DynamoDbTable(options.dynamo, options.table);
    this.depth = options.depth ?? DEFAULT_HISTORY_DEPTH;
  }

  async append(name: string, changes: TagChange[]): Promise<void> {
    await Promise.all(changes.map((change) => this.#appendOne(name, change)));
  }

  async list(name: string, tag: string): Promise<TagChange[]> {
    return changesOf(await this.#table.get(tagHistoryKey(name, tag)));
  }

  async listRepository(name: string): Promise<Map<string, TagChange[]>> {
    const { items } = await this.#table.query({
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeNames: { '#pk': PK, '#sk': SK },
      ExpressionAttributeValues: { ':pk': s(repositoryPartition(name)), ':prefix': s(HISTORY_PREFIX) },
    });
    return new Map(items.map((item) => [historyOf(item[SK]!.S!), changesOf(item)]));
  }

  async #appendOne(name: string, change: TagChange): Promise<void> {
    const itemKey = tagHistoryKey(name, change.tag);
    for (let attempt = 1; ; attempt++) {
      const item = await this.#table.get(itemKey);
      try {
        await this.#table.put(historyPut(itemKey, item, change, this.depth));
        return;
      } catch (error) {
        if (!(error instanceof Error && error.name === 'ConditionalCheckFailedException') || attempt >= APPEND_ATTEMPTS) throw error;
      }
    }
  }
}

/**
 * The Put of a tag's history item (`itemKey`) that adds `change` to what `item` holds (read before; undefined when
 * absent), conditional on `rev` being unchanged since: for PutItem, or with TableName as a transaction action.
 */
export function historyPut(itemKey: ItemKey, item: Item | undefined, change: TagChange, depth: number) {
  const rev = item?.rev?.S;
  return {
    Item: { ...key(itemKey), changes: s(JSON.stringify(withChange(changesOf(item), change, depth))), rev: s(randomBytes(8).toString('hex')) },
    ...(rev === undefined
      ? { ConditionExpression: 'attribute_not_exists(#rev)', ExpressionAttributeNames: { '#rev': 'rev' } }
      : { ConditionExpression: '#rev = :rev', ExpressionAttributeNames: { '#rev': 'rev' }, ExpressionAttributeValues: { ':rev': s(rev) } }),
  };
}

function changesOf(item: Item | undefined): TagChange[] {
  const text = item?.changes?.S;
  return text === undefined ? [] : (JSON.parse(text) as TagChange[]);
}

import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { TagFixedConflict } from '../../registry/ports.ts';
import { stampedChange, type HistoryWrite } from '../../registry/tag-history.ts';
import { key, s, type Item } from './attribute-values.ts';
import { MAX_TRANSACTION_ITEMS, type DynamoDbTable } from './dynamodb-table.ts';
import { historyPut } from './dynamodb-tag-history-store.ts';
import { tagHistoryKey, tagKey } from './keys.ts';
import { PK } from './table-definition.ts';

/**
 * The actions that set or delete tags, per tag, with the tag's history entry (HistoryWrite) beside it: the tag item
 * and its history item (`HISTORY#<tag>`) travel in one transaction, or neither is written. With history, each tag's
 * digest and history item are read first and both actions are conditional on what was read, so the entry's
 * `previous` is exact; a concurrent change of the tag cancels the transaction (ConditionalCheckFailed) and the
 * caller's `transact` builds it again from fresh reads:
 * ```
 *   push A (t → a)                               push B (t → b)
 *   ───────────────────────────────────────────  ───────────────────────────────────────────
 *   Get TAG#t: d0; Get HISTORY#t: rev r1
 *                                                Get TAG#t: d0; Get HISTORY#t: rev r1
 *   TransactWrite[ tag t → a if digest = d0,
 *     history [d0→a, …] rev r2 if rev = r1 ] ✓
 *                                                TransactWrite[ tag t → b if digest = d0, … ] ✗ cancelled
 *                                                Get TAG#t: a; Get HISTORY#t: rev r2
 *                                                TransactWrite[ tag t → b if digest = a,
 *                                                  history [a→b, d0→a, …] if rev = r2 ] ✓
 * ```
 * Without history a tag Put is unconditional (last writer wins) unless the tag is fixed (immutable).
 */
export class DynamoDbTagWrites {
  readonly #table: DynamoDbTable;

  constructor(table: DynamoDbTable) {
    this.#table = table;
  }

  /** The actions per tag that point each of `tags` at the manifest whose tag-item fields are `fields`. */
  async point(name: string, digest: string, fields: Item, tags: string[], fixed: Set<string>, history: HistoryWrite | undefined): Promise<TransactWriteItem[][]> {
    const table = this.#table.name;
    if (!history) {
      return tags.map((tag) => {
        const put: TransactWriteItem['Put'] = { TableName: table, Item: { ...key(tagKey(name, tag)), ...fields } };
        if (fixed.has(tag)) {
          put.ConditionExpression = 'attribute_not_exists(#pk) OR #digest = :digest';
          put.ExpressionAttributeNames = { '#pk': PK, '#digest': 'digest' };
          put.ExpressionAttributeValues = { ':digest': s(digest) };
        }
        return [{ Put: put }];
      });
    }
    return Promise.all(
      tags.map(async (tag) => {
        const { current, kept } = await this.#read(name, tag);
        if (fixed.has(tag) && current !== undefined && current !== digest) throw new TagFixedConflict(tag, current);
        const actions: TransactWriteItem[] = [{ Put: { TableName: table, Item: { ...key(tagKey(name, tag)), ...fields }, ...whileAt(current) } }];
        if (current !== digest) actions.push({ Put: { TableName: table, ...historyPut(tagHistoryKey(name, tag), kept, stampedChange(history.stamp, tag, current, digest), history.depth) } });
        return actions;
      }),
    );
  }

  /**
   * The actions that delete `tag` if it still points at `digest` (any digest when undefined), with its `deleted`
   * change; undefined when the tag is absent (or elsewhere).
   */
  async remove(name: string, tag: string, digest: string | undefined, history: HistoryWrite): Promise<TransactWriteItem[] | undefined> {
    const table = this.#table.name;
    const { current, kept } = await this.#read(name, tag);
    if (current === undefined || (digest !== undefined && current !== digest)) return undefined;
    return [
      { Delete: { TableName: table, Key: key(tagKey(name, tag)), ...whileAt(current) } },
      { Put: { TableName: table, ...historyPut(tagHistoryKey(name, tag), kept, stampedChange(history.stamp, tag, current, undefined), history.depth) } },
    ];
  }

  async #read(name: string, tag: string): Promise<{ current: string | undefined; kept: Item | undefined }> {
    const [item, kept] = await Promise.all([this.#table.get(tagKey(name, tag), { expression: '#digest', names: { '#digest': 'digest' } }), this.#table.get(tagHistoryKey(name, tag))]);
    return { current: item?.digest?.S, kept };
  }
}

/** The condition that the tag item still holds `current` (absent when undefined). */
function whileAt(current: string | undefined): Pick<NonNullable<TransactWriteItem['Put']>, 'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'> {
  if (current === undefined) return { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': PK } };
  return { ConditionExpression: '#digest = :current', ExpressionAttributeNames: { '#digest': 'digest' }, ExpressionAttributeValues: { ':current': s(current) } };
}

/**
 * Tags split into transactions: the first shares its 100 actions with `headActions` (the manifest and its referrer
 * entry), every tag costs `perTag` actions (2 with history: the tag and its history item, never split).
 */
export function tagBatches(tags: string[], headActions: number, perTag: number): string[][] {
  const batches: string[][] = [];
  let room = Math.floor((MAX_TRANSACTION_ITEMS - headActions) / perTag);
  for (let at = 0; at < tags.length || batches.length === 0; ) {
    batches.push(tags.slice(at, at + room));
    at += room;
    room = Math.floor(MAX_TRANSACTION_ITEMS / perTag);
  }
  return batches;
}

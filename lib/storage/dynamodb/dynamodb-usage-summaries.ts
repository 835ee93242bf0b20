import { randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { UsageSummaryStore } from '../../registry/ports.ts';
import type { UsageSummary } from '../../registry/usage.ts';
import { n, s } from './attribute-values.ts';
import type { DynamoDbTable } from './dynamodb-table.ts';
import { USAGE_PK, usageCurrentKey, usagePartKey, usagePartsPrefix } from './keys.ts';
import { PK, SK } from './table-definition.ts';

/** Bytes of gzip'd summary per item, under DynamoDB's 400 KB item limit. */
const PART_BYTES = 350_000;

/**
 * The usage summary in the metadata table: gzip'd JSON (~60 bytes per repository after compression) cut into parts
 * of {@link PART_BYTES}, items `USAGE / PART#<generation>#<index>`, and a pointer item `USAGE / CURRENT` naming the
 * generation in force. A reader gets the pointer, then Queries that generation's parts: two requests, whatever
 * the registry's size, and never a table scan. Writers never change a part; they write a new generation, then
 * move the pointer, then delete generations older than the one they replaced:
 * ```
 *   writer W (generation g2)                     reader R
 *   ──────────────────────────────────────────   ──────────────────────────────────────
 *   Put PART#g2#00000…                           Get CURRENT → g1
 *   Put CURRENT → g2 if computedAt is newer ✓
 *   Delete parts of generations ∉ {g2, g1}       Query PART#g1# → all parts of g1 (kept)
 * ```
 * A reader whose generation was deleted meanwhile (two writes during its read) finds parts missing and reads
 * again. Two writers: the later computation wins the pointer; an older one that loses deletes its own parts.
 */
export class DynamoDbUsageSummaries implements UsageSummaryStore {
  readonly #table: DynamoDbTable;

  constructor(table: DynamoDbTable) {
    this.#table = table;
  }

  async read(): Promise<UsageSummary | undefined> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.#table.get(usageCurrentKey());
      if (!current) return undefined;
      const generation = current.generation!.S!;
      const parts = Number(current.parts!.N);
      const { items } = await this.#query(usagePartsPrefix(generation), true);
      if (items.length === parts) return JSON.parse(gunzipSync(Buffer.concat(items.map((item) => item.data!.B!))).toString('utf8')) as UsageSummary;
      if (attempt >= 3) throw new Error(`usage summary ${generation} has ${items.length} of its ${parts} parts after ${attempt} reads`);
    }
  }

  async write(summary: UsageSummary): Promise<void> {
    // Generations sort by computation time: the cleanup below deletes only generations older than the one replaced.
    const generation = `${String(summary.computedAt).padStart(15, '0')}-${randomBytes(4).toString('hex')}`;
    const data = gzipSync(JSON.stringify(summary));
    const parts: Buffer[] = [];
    for (let at = 0; at < data.byteLength; at += PART_BYTES) parts.push(data.subarray(at, at + PART_BYTES));
    // UpdateItem rather than PutItem: the scheduled GC function writes summaries, and its role has no PutItem.
    await Promise.all(
      parts.map((part, index) =>
        this.#table.update(usagePartKey(generation, index), { UpdateExpression: 'SET #data = :data', ExpressionAttributeNames: { '#data': 'data' }, ExpressionAttributeValues: { ':data': { B: part } } }),
      ),
    );
    const replaced = (await this.#table.get(usageCurrentKey()))?.generation?.S;
    const moved = await this.#table.updateIf(usageCurrentKey(), {
      UpdateExpression: 'SET #generation = :generation, #parts = :parts, #computedAt = :computedAt',
      ConditionExpression: 'attribute_not_exists(#computedAt) OR #computedAt < :computedAt',
      ExpressionAttributeNames: { '#generation': 'generation', '#parts': 'parts', '#computedAt': 'computedAt' },
      ExpressionAttributeValues: { ':generation': s(generation), ':parts': n(parts.length), ':computedAt': n(summary.computedAt) },
    });
    if (!moved) {
      // A newer summary is in force: this one is dropped.
      await this.#deleteGenerations((found) => found === generation);
      return;
    }
    // The replaced generation stays for readers that got the pointer before the move; older ones go. A writer still
    // writing its parts computed later than `replaced` was in force, so its generation sorts after it and stays.
    if (replaced !== undefined) await this.#deleteGenerations((found) => found < replaced);
  }

  async #deleteGenerations(doomed: (generation: string) => boolean): Promise<void> {
    const { items } = await this.#query(usagePartsPrefix(), false);
    for (const item of items) {
      const sk = item[SK]!.S!;
      const generation = sk.slice(usagePartsPrefix().length, sk.lastIndexOf('#'));
      if (doomed(generation)) await this.#table.delete({ pk: USAGE_PK, sk });
    }
  }

  #query(prefix: string, withData: boolean) {
    return this.#table.query({
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ProjectionExpression: withData ? '#sk, #data' : '#sk',
      ExpressionAttributeNames: { '#pk': PK, '#sk': SK, ...(withData ? { '#data': 'data' } : {}) },
      ExpressionAttributeValues: { ':pk': s(USAGE_PK), ':prefix': s(prefix) },
    });
  }
}

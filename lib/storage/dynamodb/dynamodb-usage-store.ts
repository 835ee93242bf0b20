import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { UsageStore } from '../../registry/ports.ts';
import type { RepositoryFacts } from '../../registry/usage.ts';
import { s, type Item } from './attribute-values.ts';
import { DynamoDbTable } from './dynamodb-table.ts';
import { GC_ATTRIBUTES } from './gc-attributes.ts';
import { BLOB_LINK_PREFIX, HISTORY_PREFIX, MANIFEST_PREFIX, repositoryPartition, TAG_PREFIX } from './keys.ts';
import { DynamoDbUsageSummaries } from './dynamodb-usage-summaries.ts';
import { PK, SK } from './table-definition.ts';

/**
 * Usage from the metadata table: a repository's facts are Queries of its own partition (keys.ts), by prefix, with
 * only the attributes needed projected (DynamoDB still charges the read units of the whole items: link items are
 * ~200 bytes, so a quota check of a repository with 1,000 layers reads ~200 KB, about 50 strongly consistent read
 * units). The registry-wide report is never computed per request: it is read from the stored summary
 * (dynamodb-usage-summaries.ts) that `ocireg usage` and GC runs write.
 *
 * Last push: the newest manifest item's `createdAt` (written since garbage collection on DynamoDB), or the newest
 * change in the tag history, whichever is later.
 */
export class DynamoDbUsageStore implements UsageStore {
  readonly #table: DynamoDbTable;
  readonly summaries: DynamoDbUsageSummaries;

  constructor(options: { dynamo: DynamoDBClient; table: string }) {
    this.#table = new DynamoDbTable(options.dynamo, options.table);
    this.summaries = new DynamoDbUsageSummaries(this.#table);
  }

  async repositoryBlobs(name: string): Promise<Map<string, number>> {
    const items = await this.#items(name, BLOB_LINK_PREFIX, ['size']);
    return new Map(items.map((item) => [item[SK]!.S!.slice(BLOB_LINK_PREFIX.length), Number(item.size?.N ?? 0)]));
  }

  async repositoryFacts(name: string): Promise<RepositoryFacts> {
    const [blobs, manifests, tags, histories] = await Promise.all([
      this.repositoryBlobs(name),
      this.#items(name, MANIFEST_PREFIX, ['size', GC_ATTRIBUTES.createdAt]),
      this.#items(name, TAG_PREFIX, []),
      this.#items(name, HISTORY_PREFIX, ['changes']),
    ]);
    let lastPushedAt = 0;
    let manifestBytes = 0;
    for (const item of manifests) {
      manifestBytes += Number(item.size?.N ?? 0);
      lastPushedAt = Math.max(lastPushedAt, Number(item[GC_ATTRIBUTES.createdAt]?.N ?? 0));
    }
    for (const item of histories) {
      // Newest first (dynamodb-tag-history-store.ts).
      const newest = (JSON.parse(item.changes?.S ?? '[]') as Array<{ at?: string }>)[0]?.at;
      if (newest !== undefined) lastPushedAt = Math.max(lastPushedAt, Date.parse(newest) || 0);
    }
    const facts: RepositoryFacts = { name, blobs, manifests: manifests.length, manifestBytes, tags: tags.length };
    return lastPushedAt > 0 ? { ...facts, lastPushedAt } : facts;
  }

  async #items(name: string, prefix: string, attributes: string[]): Promise<Item[]> {
    const names: Record<string, string> = { '#pk': PK, '#sk': SK };
    attributes.forEach((attribute, at) => (names[`#a${at}`] = attribute));
    const { items } = await this.#table.query({
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ProjectionExpression: ['#sk', ...attributes.map((_, at) => `#a${at}`)].join(', '),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: { ':pk': s(repositoryPartition(name)), ':prefix': s(prefix) },
    });
    return items;
  }
}

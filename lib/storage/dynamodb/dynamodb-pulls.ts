import { ConditionalCheckFailedException, TransactionConflictException } from '@aws-sdk/client-dynamodb';
import { dayStart } from '../../registry/last-pull.ts';
import type { ManifestActivity } from '../../registry/ports.ts';
import { n, s, type Item } from './attribute-values.ts';
import type { DynamoDbTable } from './dynamodb-table.ts';
import { GC_ATTRIBUTES } from './gc-attributes.ts';
import { MANIFEST_PREFIX, manifestItemKey, repositoryPartition, TAG_PREFIX, tagKey } from './keys.ts';
import { PK, SK } from './table-definition.ts';

/** Attribute of manifest and tag items: epoch ms of the last pull recorded through that item. */
export const PULLED_AT = 'pulledAt';

/**
 * The last pull (lib/registry/last-pull.ts) in the metadata table: `pulledAt` on the item the pull read, the manifest
 * item for a pull by digest, the tag item (which embeds the manifest) for a pull by tag, so the day check is on what
 * the pull's one GetItem returned. The write is one UpdateItem on condition:
 * ```
 *   attribute_exists(pk)                              the item is still there (UpdateItem would create one otherwise:
 *                                                     a pull must not bring back a deleted tag or manifest)
 *   AND digest = :digest                              a tag still points at the manifest pulled
 *   AND (attribute_not_exists(pulledAt) OR pulledAt < :midnight)   not yet recorded today
 *
 *   pull A (tag t, stale)           pull B (tag t, stale)            push t → d2
 *   UpdateItem t if … ✓
 *                                   UpdateItem t if … ✗ (recorded)   Put t → d2 (no pulledAt: d2 not pulled yet)
 * ```
 * A pushed item is written whole, so a push of a tag or manifest clears its `pulledAt`; the push itself is the newer
 * activity (`createdAt`, gc-attributes.ts). A manifest's last pull is the latest of its item's and its tags' items
 * (one Query each over the repository's partition).
 */
export class DynamoDbPulls {
  readonly #table: DynamoDbTable;

  constructor(table: DynamoDbTable) {
    this.#table = table;
  }

  async record(name: string, reference: string, digest: string, at: number): Promise<boolean> {
    try {
      await this.#table.update(reference === digest ? manifestItemKey(name, digest) : tagKey(name, reference), {
        UpdateExpression: 'SET #pulledAt = :at',
        ConditionExpression: 'attribute_exists(#pk) AND #digest = :digest AND (attribute_not_exists(#pulledAt) OR #pulledAt < :midnight)',
        ExpressionAttributeNames: { '#pk': PK, '#digest': 'digest', '#pulledAt': PULLED_AT },
        ExpressionAttributeValues: { ':at': n(at), ':digest': s(digest), ':midnight': n(dayStart(at)) },
      });
      return true;
    } catch (error) {
      // Recorded today already, gone, or moved; or being rewritten by a push's transaction right now.
      if (error instanceof ConditionalCheckFailedException || error instanceof TransactionConflictException) return false;
      throw error;
    }
  }

  async activity(name: string): Promise<Map<string, ManifestActivity>> {
    const [manifests, tags] = await Promise.all([this.#items(name, MANIFEST_PREFIX, [PULLED_AT, GC_ATTRIBUTES.createdAt]), this.#items(name, TAG_PREFIX, [PULLED_AT])]);
    const activity = new Map<string, ManifestActivity>();
    for (const item of manifests) {
      const entry: ManifestActivity = {};
      const pushedAt = numberOf(item[GC_ATTRIBUTES.createdAt]);
      const pulledAt = numberOf(item[PULLED_AT]);
      if (pushedAt !== undefined) entry.pushedAt = pushedAt;
      if (pulledAt !== undefined) entry.pulledAt = pulledAt;
      activity.set(item.digest!.S!, entry);
    }
    for (const item of tags) {
      const entry = activity.get(item.digest!.S!);
      const pulledAt = numberOf(item[PULLED_AT]);
      if (entry && pulledAt !== undefined && pulledAt > (entry.pulledAt ?? -Infinity)) entry.pulledAt = pulledAt;
    }
    return activity;
  }

  async #items(name: string, prefix: string, attributes: string[]): Promise<Item[]> {
    const names = Object.fromEntries(attributes.map((attribute, index) => [`#a${index}`, attribute]));
    const { items } = await this.#table.query({
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ProjectionExpression: ['#digest', ...Object.keys(names)].join(', '),
      ExpressionAttributeNames: { '#pk': PK, '#sk': SK, '#digest': 'digest', ...names },
      ExpressionAttributeValues: { ':pk': s(repositoryPartition(name)), ':prefix': s(prefix) },
    });
    return items;
  }
}

/** The pulledAt of an item as read (manifest-item.ts). */
export function numberOf(value: Item[string] | undefined): number | undefined {
  return value?.N === undefined ? undefined : Number(value.N);
}

import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { manifestBlobUnknown } from '../../registry/errors.ts';
import type { ManifestReferences } from '../../registry/ports.ts';
import { key, n } from './attribute-values.ts';
import { MAX_TRANSACTION_ITEMS, type DynamoDbTable } from './dynamodb-table.ts';
import { GC_ATTRIBUTES } from './gc-attributes.ts';
import { linkedBlobKey, manifestItemKey } from './keys.ts';
import { PK } from './table-definition.ts';

/** How long a manifest push whose references do not fit its transaction holds them (see {@link leaseReferences}). */
export const REFERENCE_LEASE_MS = 60 * 60 * 1000;
/**
 * The manifest's transaction must be sent this long before the lease ends: far more than one request takes, and
 * more than the clock tolerance between this writer and a collector (lib/storage/dynamodb/dynamodb-gc.ts).
 */
const LEASE_MARGIN_MS = 20 * 60 * 1000;

/** One referenced item's transaction action, and the digest a failed condition reports. */
export interface ReferenceAction {
  action: TransactWriteItem;
  digest: string;
}

/**
 * The actions a manifest push puts in its own transaction for what it references (the blobs linked into `name`,
 * the child manifests of `name`): each sets `attribute` to `value` on condition that the item exists and is not
 * doomed. Writes, not ConditionChecks: the stamp is what refuses a later doom by a run whose scan missed the
 * manifest (collector.ts, case b). One action per item (a transaction may not touch an item twice).
 */
export function referenceActions(table: string, name: string, references: ManifestReferences, attribute: string, value: number): ReferenceAction[] {
  const wanted = new Map<string, ReferenceAction>();
  const add = (itemKey: { pk: string; sk: string }, digest: string) =>
    wanted.set(`${itemKey.pk}\u0000${itemKey.sk}`, {
      digest,
      action: {
        Update: {
          TableName: table,
          Key: key(itemKey),
          UpdateExpression: 'SET #stamp = :value',
          ConditionExpression: 'attribute_exists(#pk) AND attribute_not_exists(#doomed)',
          ExpressionAttributeNames: { '#stamp': attribute, '#pk': PK, '#doomed': GC_ATTRIBUTES.doomed },
          ExpressionAttributeValues: { ':value': n(value) },
        },
      },
    });
  for (const digest of references.blobs) add(linkedBlobKey(name, digest), digest);
  for (const digest of references.manifests) add(manifestItemKey(name, digest), digest);
  return [...wanted.values()];
}

/**
 * The fallback for a manifest with more references than its transaction has room for (an index of ~100 platforms):
 * the references are leased first, in transactions of their own, until now + {@link REFERENCE_LEASE_MS}, then the
 * manifest is written without them. A run dooms an item only while its lease ended before the run's `since`:
 * ```
 *   push of M (refs R₁…R₁₅₀)                           collector run (since = scan start − tolerance)
 *   ─────────────────────────────────────────────────  ──────────────────────────────────────────────────
 *   TransactWrite[ lease R₁…R₁₀₀ until L ]  ✓/✗ doomed → MANIFEST_BLOB_UNKNOWN, nothing written
 *   TransactWrite[ lease R₁₀₁…R₁₅₀ until L ]           a doom between the two:  R₁₀₁ doomed → ✗ as above
 *                                                      doom(R₁) ✗ while L ≥ since
 *   now < L − margin? ✓ → TransactWrite[ M, tags ]     since > L means the scan began after M was written
 *   (✗ → the push fails before writing M)              (M at t < L − margin): the scan lists M, R kept
 * ```
 * A lease that a failed push leaves behind only delays collection of its items by an hour.
 * @returns the lease's end, for {@link assertLeaseHolds}
 */
export async function leaseReferences(table: DynamoDbTable, name: string, references: ManifestReferences): Promise<number> {
  const until = Date.now() + REFERENCE_LEASE_MS;
  const actions = referenceActions(table.name, name, references, GC_ATTRIBUTES.leaseUntil, until);
  for (let at = 0; at < actions.length; at += MAX_TRANSACTION_ITEMS) {
    const batch = actions.slice(at, at + MAX_TRANSACTION_ITEMS);
    const failed = await table.transactChecked(batch.map(({ action }) => action));
    if (failed !== undefined) throw manifestBlobUnknown(batch[failed]!.digest);
  }
  return until;
}

/** Just before the manifest's transaction: the lease still covers it, with the margin. */
export function assertLeaseHolds(until: number): void {
  if (Date.now() > until - LEASE_MARGIN_MS) throw new Error('the references of this manifest were leased too long ago for its write to be safe from garbage collection; push it again');
}

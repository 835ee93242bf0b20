import { n, s, type Item } from './attribute-values.ts';
import { PK } from './table-definition.ts';

/**
 * Garbage-collection attributes of blob records, links, manifest items and manifest-body guards (keys.ts lists the
 * items). Items written before garbage collection existed have none: never referenced since, created at 0 (old).
 */
export const GC_ATTRIBUTES = {
  /** Epoch ms the item was written (a link: its last (re)link; a manifest: its last push). */
  createdAt: 'createdAt',
  /** Epoch ms of the last write that referenced it, by the writer's clock. */
  referencedAt: 'lastReferencedAt',
  /**
   * Epoch ms until which a manifest push with more references than one transaction holds counts on it
   * (dynamodb-references.ts): no run whose `since` is before it may doom the item.
   */
  leaseUntil: 'leaseUntil',
  /** The id of the collector run that will delete it; every referencing write refuses a doomed item. */
  doomed: 'doomed',
  /** Epoch ms of the doom, by the collector's clock: a doom older than {@link STALE_DOOM_MS} belongs to a dead run. */
  doomedAt: 'doomedAt',
} as const;

/**
 * A run dooms an item and deletes it in the next call or two; a doom this old was left by a run that died in
 * between (a Lambda timeout, a killed CLI). Another run may take it over, and a writer that must wait for a doom to
 * end stops waiting. An hour is four times the longest Lambda invocation.
 */
export const STALE_DOOM_MS = 60 * 60 * 1000;

/** Names for the expressions below; merge into ExpressionAttributeNames. */
export const GC_NAMES = {
  '#pk': PK,
  '#created': GC_ATTRIBUTES.createdAt,
  '#referenced': GC_ATTRIBUTES.referencedAt,
  '#lease': GC_ATTRIBUTES.leaseUntil,
  '#doomed': GC_ATTRIBUTES.doomed,
  '#doomedAt': GC_ATTRIBUTES.doomedAt,
} as const;

/**
 * The UpdateItem that dooms an item for run `runId`: only if it exists (unless `upsert`), is not doomed by a live
 * run, and nothing referenced it at or after `since` (its creation, its last reference stamp, a lease). The
 * condition is the whole race: every referencing write stamps or checks the same item (collector.ts draws it).
 */
export function doomUpdate(runId: string, since: number, now: number, options: { upsert?: boolean } = {}) {
  const unreferenced = ['#created', '#referenced', '#lease'].map((name) => `(attribute_not_exists(${name}) OR ${name} < :since)`).join(' AND ');
  const { '#pk': pk, ...names } = GC_NAMES;
  return {
    UpdateExpression: 'SET #doomed = :run, #doomedAt = :now',
    ConditionExpression: `${options.upsert ? '' : 'attribute_exists(#pk) AND '}(attribute_not_exists(#doomed) OR #doomedAt < :stale) AND ${unreferenced}`,
    ExpressionAttributeNames: options.upsert ? names : { ...names, '#pk': pk },
    ExpressionAttributeValues: { ':run': s(runId), ':now': n(now), ':since': n(since), ':stale': n(now - STALE_DOOM_MS) } as Item,
  };
}

/** The condition of a delete by the run that doomed the item. */
export function doomedBy(runId: string) {
  return { ConditionExpression: '#doomed = :run', ExpressionAttributeNames: { '#doomed': GC_ATTRIBUTES.doomed }, ExpressionAttributeValues: { ':run': s(runId) } as Item };
}

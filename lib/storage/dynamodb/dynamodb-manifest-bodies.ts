import { randomBytes } from 'node:crypto';
import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { tooManyRequests } from '../../registry/errors.ts';
import type { ManifestBodyStore } from '../../registry/ports.ts';
import { key, n, s } from './attribute-values.ts';
import type { DynamoDbTable } from './dynamodb-table.ts';
import { doomedBy, doomUpdate, GC_ATTRIBUTES, STALE_DOOM_MS } from './gc-attributes.ts';
import { manifestBodyGuardKey } from './keys.ts';
import { backoff } from './throttling.ts';

/** Waits for a doomed guard to be dropped: the run deletes one S3 object and one item in between. */
const RESERVE_ATTEMPTS = 8;

/**
 * Garbage collection of large manifest bodies (ManifestBodyStore, S3 `manifests/<alg>/<hex>`), which cannot be
 * deleted on a condition. Each body has a guard item (keys.ts, `BODY#<digest>`) that carries the marks instead:
 * a push reserves the guard before it writes the body and stamps it, on condition that it is still the same
 * generation and not doomed, in the manifest's own transaction; a run dooms the guard (creating it if absent),
 * deletes the body, then deletes the guard.
 * ```
 *   push of manifest M (body B)                      collector run R (since = scan start − tolerance)
 *   ───────────────────────────────────────────      ────────────────────────────────────────────────────
 *   (a) M written before since                       the scan lists M → B needed, kept
 *   (b) reserve: guard gen g, referenced = t₁        doom(guard) ✗ while referenced ≥ since
 *       put B; TransactWrite[ M, stamp guard if
 *       gen = g and not doomed ] at t₂ ≥ since       doom(guard) ✗ (referenced = t₂ ≥ since) → B kept
 *   (c) reserve while doomed ✗ → wait               doom ✓ → delete B → delete guard
 *       reserve ✓ (new guard, gen g′) → put B → M   the new B was written after the delete: intact
 *   (d) reserve ✓ (gen g), put B                     doom ✓ (t₁ < since) → delete B → delete guard
 *       TransactWrite ✗ (guard gone or doomed,       
 *       gen ≠ g) → start again from reserve          → B is put again before any M names it
 * ```
 * The generation is what closes (d): a guard deleted and created again by another push in between has another
 * gen, so a transaction never succeeds on the strength of a reservation whose body the run deleted.
 */
export class DynamoDbManifestBodies {
  readonly #table: DynamoDbTable;
  readonly #bodies: ManifestBodyStore | undefined;

  constructor(table: DynamoDbTable, bodies: ManifestBodyStore | undefined) {
    this.#table = table;
    this.#bodies = bodies;
  }

  /** Before the body is written: the guard's generation, once no live run dooms it (a dead run's doom is taken over). */
  async reserve(digest: string): Promise<string> {
    for (let attempt = 1; attempt <= RESERVE_ATTEMPTS; attempt++) {
      const now = Date.now();
      const item = await this.#table.updateIf(manifestBodyGuardKey(digest), {
        UpdateExpression: 'SET #referenced = :now, #gen = if_not_exists(#gen, :gen) REMOVE #doomed, #doomedAt',
        ConditionExpression: 'attribute_not_exists(#doomed) OR #doomedAt < :stale',
        ExpressionAttributeNames: { '#referenced': GC_ATTRIBUTES.referencedAt, '#gen': 'gen', '#doomed': GC_ATTRIBUTES.doomed, '#doomedAt': GC_ATTRIBUTES.doomedAt },
        ExpressionAttributeValues: { ':now': n(now), ':gen': s(randomBytes(8).toString('hex')), ':stale': n(now - STALE_DOOM_MS) },
      });
      if (item?.gen?.S !== undefined) return item.gen.S;
      await backoff(attempt + 1, 50);
    }
    throw tooManyRequests(`garbage collection is deleting the stored body of manifest ${digest}; push it again`, 1);
  }

  /** The transaction action that stamps the guard if it is still generation `gen` and not doomed. */
  stamp(digest: string, gen: string, now: number): TransactWriteItem {
    return {
      Update: {
        TableName: this.#table.name,
        Key: key(manifestBodyGuardKey(digest)),
        UpdateExpression: 'SET #referenced = :now',
        ConditionExpression: '#gen = :gen AND attribute_not_exists(#doomed)',
        ExpressionAttributeNames: { '#referenced': GC_ATTRIBUTES.referencedAt, '#gen': 'gen', '#doomed': GC_ATTRIBUTES.doomed },
        ExpressionAttributeValues: { ':now': n(now), ':gen': s(gen) },
      },
    };
  }

  /** Dooms the body of `digest` for `runId` unless a push reserved or stamped it at or after `since`. */
  async doom(digest: string, runId: string, since: number): Promise<boolean> {
    return (await this.#table.updateIf(manifestBodyGuardKey(digest), doomUpdate(runId, since, Date.now(), { upsert: true }))) !== undefined;
  }

  /** Deletes the body, then its guard, if `runId` still dooms it; true when both are gone. */
  async drop(digest: string, runId: string): Promise<boolean> {
    if (!this.#bodies) return false;
    if ((await this.#table.get(manifestBodyGuardKey(digest)))?.[GC_ATTRIBUTES.doomed]?.S !== runId) return false;
    await this.#bodies.delete(digest);
    return this.#table.deleteIf(manifestBodyGuardKey(digest), doomedBy(runId));
  }
}

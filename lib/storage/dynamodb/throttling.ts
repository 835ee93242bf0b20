import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { tooManyRequests } from '../../registry/errors.ts';

/**
 * DynamoDB throttling, and what is left to do after the SDK.
 *
 * The SDK's standard retry strategy (the DynamoDB client's defaults: 4 attempts, backoff with full jitter on a
 * 1 s base for throttling, a client-wide retry quota) already retries the throttling *errors*:
 * ThrottlingException, ProvisionedThroughputExceededException, RequestLimitExceeded (@smithy/core
 * `THROTTLING_ERROR_CODES`). What it does not retry, and this store does:
 * - TransactionCanceledException whose CancellationReasons hold `ThrottlingError`: to the SDK a plain 400;
 *   the transaction is resent (TransactWrite is all or nothing, so resending is safe) up to
 *   {@link THROTTLED_ATTEMPTS} times;
 * - BatchGetItem's `UnprocessedKeys`: a success that did not read everything (what throttling does to a batch);
 *   the unprocessed keys are asked again, up to {@link THROTTLED_ATTEMPTS} times.
 * When either bound, or the SDK's, is exhausted, the request ends with 429 TOOMANYREQUESTS and `Retry-After`
 * instead of a 500: nothing is wrong with the request or the data, the table is momentarily over its capacity
 * (the spec's TOOMANYREQUESTS). No retry here multiplies the SDK's: an error the SDK already retried is
 * translated, never resent.
 */

/** Attempts of a throttled transaction or batch read (the SDK's own count for DynamoDB). */
export const THROTTLED_ATTEMPTS = 4;
/** Full-jitter backoff base for those attempts, ms: waits of ≤ 100, 200, 400 ms. */
const BACKOFF_BASE_MS = 100;
/**
 * What a 429 asks the client to wait. On-demand tables absorb a burst within seconds (adaptive capacity, new
 * partitions); a short wait with the client's own backoff on repeat beats a long fixed one.
 */
export const RETRY_AFTER_SECONDS = 1;

/** Error names the SDK retries as throttling; once they reach us its attempts are spent. */
const THROTTLING_ERRORS = new Set(['ThrottlingException', 'ProvisionedThroughputExceededException', 'RequestLimitExceeded']);

/** Whether a TransactWriteItems was cancelled for throughput (one of its items throttled). */
export function isThrottledTransaction(error: unknown): boolean {
  return error instanceof TransactionCanceledException && (error.CancellationReasons ?? []).some((reason) => reason.Code === 'ThrottlingError');
}

/** Awaits a DynamoDB request; throttling that outlasted the SDK's retries becomes 429 TOOMANYREQUESTS. */
export async function translateThrottling<T>(request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (error) {
    if (error instanceof Error && THROTTLING_ERRORS.has(error.name)) throw throttled(error.name, error);
    throw error;
  }
}

/** The 429 for a request DynamoDB kept throttling. */
export function throttled(what: string, cause?: unknown) {
  return tooManyRequests(`the metadata table is over its capacity (${what}); retry later`, RETRY_AFTER_SECONDS, cause === undefined ? undefined : { cause });
}

/** Waits before attempt `attempt + 1` (full jitter: a crowd of throttled writers spreads out). */
export function backoff(attempt: number, baseMs = BACKOFF_BASE_MS): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * baseMs * 2 ** (attempt - 1)));
}

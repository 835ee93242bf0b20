import { setTimeout as sleep } from 'node:timers/promises';
import { NetworkError } from './http-transport.ts';

/** How often and how patiently transient failures (network, 5xx, 429, 408) are retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 6). */
  attempts: number;
  /** Delay before the first retry; doubles each time (default 500 ms). */
  baseDelayMs: number;
  /** Ceiling of one delay (default 15 s). */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 500, maxDelayMs: 15_000 };

/** A registry answered with a status the caller did not expect. */
export class RegistryError extends Error {
  override name = 'RegistryError';
  readonly status: number;
  /** The first `errors[].code` of the body, when it had one. */
  readonly code: string | undefined;
  /** From `Retry-After`, for 429/503. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, status: number, options: { code?: string | undefined; retryAfterMs?: number | undefined } = {}) {
    super(message);
    this.status = status;
    this.code = options.code;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export function isTransient(error: unknown): boolean {
  if (error instanceof NetworkError) return true;
  if (error instanceof RegistryError) return error.status >= 500 || error.status === 429 || error.status === 408;
  return false;
}

/**
 * The n-th retry's delay (n from 0): `base * 2^n`, capped, with up to 25 % jitter so parallel uploads that failed
 * together do not retry together; a server's `Retry-After` wins when longer.
 */
export function backoffDelay(policy: RetryPolicy, retry: number, error?: unknown, random: () => number = Math.random): number {
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  const jittered = exponential * (0.75 + 0.25 * random());
  const retryAfter = error instanceof RegistryError ? error.retryAfterMs : undefined;
  return Math.round(Math.max(jittered, retryAfter ?? 0));
}

/** Runs `action` until it succeeds, a non-transient error occurs, or the attempts are used up. */
export async function withRetry<T>(
  action: (attempt: number) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
  onRetry?: (error: unknown, delayMs: number, attempt: number) => void,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await action(attempt);
    } catch (error) {
      if (!isTransient(error) || attempt + 1 >= policy.attempts) throw error;
      const delay = backoffDelay(policy, attempt, error);
      onRetry?.(error, delay, attempt + 1);
      await sleep(delay);
    }
  }
}

/** `Retry-After` as seconds or an HTTP date, in milliseconds. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * A Lambda execution environment's one-time initialisation (SDK clients, the signing key), kept once it succeeds
 * and forgotten when it fails, so that a transient error at a cold start (Secrets Manager throttled, a network
 * blip, an IAM grant still propagating) costs the requests that saw it, not every request the instance serves
 * until Lambda recycles it. Concurrent callers share the attempt in flight.
 *
 * ```
 * init phase   start() ── attempt 1: GetSecretValue … ✗ ThrottlingException (reported to start's callback)
 * invocation 1 get() ───── shares attempt 1 still in flight ── rejected: 500; attempt 1 forgotten
 * invocation 2 get() ───── attempt 2: Get ✓ Put ✓ Get(VersionId) ✓ ── app kept
 * invocation 3 get() ───── the kept app, no AWS call
 * ```
 * The forgetting reaction is registered when the attempt starts, before any caller's `await`, so a caller that
 * sees the rejection already finds the slot empty and the next `get()` starts afresh.
 */
export class ColdStart<T> {
  readonly #init: () => Promise<T>;
  #attempt: Promise<T> | undefined;

  constructor(init: () => Promise<T>) {
    this.#init = init;
  }

  /**
   * Starts the first attempt now, during Lambda's init phase. Its failure goes to `report`: an invocation that
   * starts after it sees a fresh attempt, not this error.
   */
  start(report: (error: unknown) => void = () => undefined): this {
    this.get().catch(report);
    return this;
  }

  /** The initialised value: the kept one, the attempt in flight, or a new attempt after a failed one. */
  get(): Promise<T> {
    if (this.#attempt === undefined) {
      const attempt = (async () => this.#init())();
      this.#attempt = attempt;
      attempt.catch(() => {
        if (this.#attempt === attempt) this.#attempt = undefined;
      });
    }
    return this.#attempt;
  }
}

/**
 * One value read from a store at most every `ttlMs`: what the request path uses for small lists that admins change
 * from another process (storage policies, cache rules), so a request costs no extra read most of the time and a
 * change applies within `ttlMs` everywhere, without a restart. Concurrent callers share one read; a failed read is
 * not kept, so the next call tries again.
 */
export class BriefCache<T> {
  readonly #read: () => Promise<T>;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #last: { at: number; value: Promise<T> } | undefined;

  constructor(read: () => Promise<T>, ttlMs: number, now: () => number = Date.now) {
    this.#read = read;
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  get(): Promise<T> {
    const now = this.#now();
    if (!this.#last || now - this.#last.at >= this.#ttlMs) {
      const value = this.#read();
      this.#last = { at: now, value };
      value.catch(() => {
        if (this.#last?.value === value) this.#last = undefined;
      });
    }
    return this.#last.value;
  }
}

/**
 * The client's side of a pull-through cache fill (pull-through-cache.ts): the fill hands it the upstream's chunks
 * one at a time while it stores them, and the client's response body reads them. One slot, so the slower of client
 * and store sets the pace (no buffering of a layer in memory).
 *
 * The client may go away at any time (the HTTP adapter ends the body with `return()`, or `throw()` on a broken
 * connection): from then on `put` resolves at once and the fill carries on for the store alone. The fill ends the
 * feed when the blob is stored (`end()`) or refused (`end(error)`: the body fails and the adapter breaks the
 * connection, so the client never takes a truncated or corrupt body for a complete one).
 */
export class ClientFeed implements AsyncIterable<Uint8Array> {
  #slot: { chunk: Uint8Array; taken: () => void } | undefined;
  #end: { error: unknown } | 'clean' | undefined;
  #wake: (() => void) | undefined;
  #gone = false;

  /** A feed nobody reads (a fill for HEAD, a Range or an upstream without Content-Length): `put` never waits. */
  static detached(): ClientFeed {
    const feed = new ClientFeed();
    feed.#leave();
    return feed;
  }

  /** Whether the client went away (or never came). */
  get gone(): boolean {
    return this.#gone;
  }

  /** Hands `chunk` to the client; resolves once it took it, or at once when it is gone. One call at a time. */
  put(chunk: Uint8Array): Promise<void> {
    if (this.#gone) return Promise.resolve();
    return new Promise((resolve) => {
      this.#slot = { chunk, taken: resolve };
      this.#wakeUp();
    });
  }

  /** No more chunks: the body ends after the last one taken, or fails with `error`. */
  end(error?: unknown): void {
    this.#end = error === undefined ? 'clean' : { error };
    this.#wakeUp();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const done = (): IteratorResult<Uint8Array> => ({ done: true, value: undefined });
    return {
      next: async () => {
        for (;;) {
          if (this.#gone) return done();
          const slot = this.#slot;
          if (slot) {
            this.#slot = undefined;
            slot.taken();
            return { done: false, value: slot.chunk };
          }
          if (this.#end === 'clean') return done();
          if (this.#end) throw this.#end.error;
          await new Promise<void>((resolve) => (this.#wake = resolve));
        }
      },
      return: async () => {
        this.#leave();
        return done();
      },
      throw: async () => {
        this.#leave();
        return done();
      },
    };
  }

  #leave(): void {
    this.#gone = true;
    const slot = this.#slot;
    this.#slot = undefined;
    slot?.taken();
    this.#wakeUp();
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

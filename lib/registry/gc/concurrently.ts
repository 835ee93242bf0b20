/**
 * Runs `work` over `items`, at most `limit` at a time, taken in order. Resolves once every started item settled;
 * rejects with the first failure, after the items already started have finished (a removal is never abandoned
 * between its doom and its drop by a sibling's failure), and starts no new item after it.
 */
export async function concurrently<T>(items: Iterable<T>, limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]();
  let failure: { error: unknown } | undefined;
  async function worker(): Promise<void> {
    for (let next = iterator.next(); !next.done && !failure; next = iterator.next()) {
      try {
        await work(next.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.floor(limit)) }, worker));
  if (failure) throw failure.error;
}

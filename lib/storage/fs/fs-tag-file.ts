import { stampedChange, withChange, type HistoryWrite, type TagChange } from '../../registry/tag-history.ts';
import { readFileIfExists, removeFile, writeFileAtomic } from './atomic-file.ts';
import type { KeyedMutex } from './keyed-mutex.ts';
import type { FsKeys } from './keys.ts';

/**
 * A tag file (`_tags/<tag>`: the digest) and its history file (`_history/<tag>.json`: the kept changes, newest
 * first), changed together without a transaction. Every change of a tag runs under the tag's lock ({@link tagLock},
 * shared by the metadata and history stores of a data dir) in this order:
 * ```
 *   1. _history/<tag>.json ← [change (pending), …kept]   the intent: `change.digest` is where the tag is going
 *   2. _tags/<tag> ← digest, or removed                   the commit point (rename / unlink)
 *   3. _history/<tag>.json ← [change, …kept]             the intent confirmed
 * ```
 * A pending entry counts only if the tag points where it says ({@link committedChanges}); otherwise it is left out
 * and the next change of the tag drops it. So a write that fails or a process that dies between 1 and 2 leaves
 * neither the tag change nor its entry; between 2 and 3, both. Every step is one atomic rename. Readers read the tag
 * before the history:
 * ```
 *   reader                                    writer (t: d1 → d2)
 *   ────────────────────────────────────────  ───────────────────────────────────────────────
 *   read t: d1
 *                                             1. history ← [d1→d2 pending, …]; 2. t ← d2; 3. confirmed
 *   read history: [d1→d2, …]: newest is not where t was read, but it is confirmed: the reader sees a history one
 *   change ahead of the tag it read (a rollback then answers TAG_CONFLICT: the tag moved under it)
 * ```
 */
export class FsTagFile {
  readonly #keys: FsKeys;
  readonly #locks: KeyedMutex;

  constructor(keys: FsKeys, locks: KeyedMutex) {
    this.#keys = keys;
    this.#locks = locks;
  }

  /** Runs `section` under the tag's lock, with the digest the tag points at now (undefined: absent). */
  locked<T>(name: string, tag: string, section: (current: string | undefined) => Promise<T>): Promise<T> {
    return this.#locks.run(tagLock(name, tag), async () => section(await this.digest(name, tag)));
  }

  async digest(name: string, tag: string): Promise<string | undefined> {
    return (await readFileIfExists(this.#keys.tag(name, tag)))?.trim();
  }

  /**
   * Under the tag's lock (inside {@link locked}): points the tag at `next` (undefined: deletes it), which was at
   * `current`, writing its change first when `history` is given and the tag changes.
   */
  async write(name: string, tag: string, current: string | undefined, next: string | undefined, history: HistoryWrite | undefined): Promise<void> {
    const recorded = history && current !== next ? withChange(committedChanges(await this.#readHistory(name, tag), current), stampedChange(history.stamp, tag, current, next), history.depth) : undefined;
    if (recorded) await this.#writeHistory(name, tag, [{ ...recorded[0]!, pending: true }, ...recorded.slice(1)]);
    if (next === undefined) await removeFile(this.#keys.tag(name, tag));
    else await writeFileAtomic(this.#keys.tmpDir, this.#keys.tag(name, tag), next);
    if (recorded) await this.#writeHistory(name, tag, recorded);
  }

  /** The tag's committed changes, newest first. */
  async history(name: string, tag: string): Promise<TagChange[]> {
    const current = await this.digest(name, tag);
    return committedChanges(await this.#readHistory(name, tag), current);
  }

  /** Appends changes already committed (the tag is where the newest says), under the tag's lock. */
  async append(name: string, change: TagChange, depth: number): Promise<void> {
    await this.locked(name, change.tag, async (current) => {
      await this.#writeHistory(name, change.tag, withChange(committedChanges(await this.#readHistory(name, change.tag), current), change, depth));
    });
  }

  async #readHistory(name: string, tag: string): Promise<HistoryEntry[]> {
    const text = await readFileIfExists(this.#keys.tagHistory(name, tag));
    return text === undefined ? [] : (JSON.parse(text) as HistoryEntry[]);
  }

  async #writeHistory(name: string, tag: string, entries: HistoryEntry[]): Promise<void> {
    await writeFileAtomic(this.#keys.tmpDir, this.#keys.tagHistory(name, tag), JSON.stringify(entries));
  }
}

/** A change as the history file holds it: the newest may still be pending (written before its tag). */
type HistoryEntry = TagChange & { pending?: true };

/**
 * The committed changes of a history file whose tag points at `current`: a pending newest entry counts (confirmed)
 * when the tag followed it, and is left out when it did not (its tag write never happened).
 */
export function committedChanges(entries: HistoryEntry[], current: string | undefined): TagChange[] {
  const [newest, ...older] = entries;
  if (newest?.pending === undefined) return entries;
  const { pending: _pending, ...change } = newest;
  return change.digest === current ? [change, ...older] : older;
}

/** Lock keys of tags: upload ids (the other lock keys) hold no `/` or `:`. */
export function tagLock(name: string, tag: string): string {
  return `tag:${name}:${tag}`;
}

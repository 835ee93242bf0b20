import { DEFAULT_HISTORY_DEPTH, type TagChange, type TagHistoryStore } from '../../registry/tag-history.ts';
import { listDir } from './data-dir-reads.ts';
import { FsTagFile } from './fs-tag-file.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import type { FsKeys } from './keys.ts';

/**
 * Tag history in one JSON file per tag (`_history/<tag>.json`, newest first, trimmed to `depth`), written by the
 * metadata store's tag writes before the tag itself and read back without an entry the tag never followed
 * (fs-tag-file.ts). `locks` must be the metadata store's tag locks (openFsStorage shares them).
 */
export class FsTagHistoryStore implements TagHistoryStore {
  readonly depth: number;
  readonly #keys: FsKeys;
  readonly #tags: FsTagFile;

  constructor(keys: FsKeys, depth = DEFAULT_HISTORY_DEPTH, locks = new KeyedMutex()) {
    this.#keys = keys;
    this.depth = depth;
    this.#tags = new FsTagFile(keys, locks);
  }

  async append(name: string, changes: TagChange[]): Promise<void> {
    // One tag's changes in their order; different tags in parallel.
    const byTag = new Map<string, TagChange[]>();
    for (const change of changes) byTag.set(change.tag, [...(byTag.get(change.tag) ?? []), change]);
    await Promise.all(
      [...byTag.values()].map(async (ofTag) => {
        for (const change of ofTag) await this.#tags.append(name, change, this.depth);
      }),
    );
  }

  async list(name: string, tag: string): Promise<TagChange[]> {
    return this.#tags.history(name, tag);
  }

  async listRepository(name: string): Promise<Map<string, TagChange[]>> {
    const tags = new Map<string, TagChange[]>();
    for (const file of (await listDir(this.#keys.tagHistoryDir(name))).filter((entry) => entry.endsWith('.json'))) {
      const tag = file.slice(0, -'.json'.length);
      const changes = await this.list(name, tag);
      if (changes.length > 0) tags.set(tag, changes);
    }
    return tags;
  }
}

import { readdir } from 'node:fs/promises';
import { DEFAULT_HISTORY_DEPTH, withChange, type TagChange, type TagHistoryStore } from '../../registry/tag-history.ts';
import { isNotFound, readFileIfExists, writeFileAtomic } from './atomic-file.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import type { FsKeys } from './keys.ts';

/**
 * Tag history in one JSON file per tag (`_history/<tag>.json`, newest first, trimmed to `depth`), rewritten
 * atomically under a per-tag lock: one process owns a data dir, so two changes of one tag never lose each other.
 */
export class FsTagHistoryStore implements TagHistoryStore {
  readonly depth: number;
  readonly #keys: FsKeys;
  readonly #mutex = new KeyedMutex();

  constructor(keys: FsKeys, depth = DEFAULT_HISTORY_DEPTH) {
    this.#keys = keys;
    this.depth = depth;
  }

  async append(name: string, changes: TagChange[]): Promise<void> {
    await Promise.all(
      changes.map((change) =>
        this.#mutex.run(`${name}:${change.tag}`, async () => {
          const path = this.#keys.tagHistory(name, change.tag);
          const kept = withChange(await this.#read(path), change, this.depth);
          await writeFileAtomic(this.#keys.tmpDir, path, JSON.stringify(kept));
        }),
      ),
    );
  }

  async list(name: string, tag: string): Promise<TagChange[]> {
    return this.#read(this.#keys.tagHistory(name, tag));
  }

  async listRepository(name: string): Promise<Map<string, TagChange[]>> {
    const tags = new Map<string, TagChange[]>();
    const files = await readdir(this.#keys.tagHistoryDir(name)).catch((error: unknown) => (isNotFound(error) ? [] : Promise.reject(error)));
    for (const file of files.filter((entry) => entry.endsWith('.json'))) {
      const tag = file.slice(0, -'.json'.length);
      tags.set(tag, await this.list(name, tag));
    }
    return tags;
  }

  async #read(path: string): Promise<TagChange[]> {
    const text = await readFileIfExists(path);
    return text === undefined ? [] : (JSON.parse(text) as TagChange[]);
  }
}

import { DEFAULT_HISTORY_DEPTH, withChange, type TagChange, type TagHistoryStore } from '../../registry/tag-history.ts';
import type { MemoryMetadataStore } from './memory-metadata-store.ts';

/**
 * Tag history in memory: the fake for core unit tests. The entries live beside the tags in the
 * {@link MemoryMetadataStore} that writes them (HistoryWrite); this store reads them.
 */
export class MemoryTagHistoryStore implements TagHistoryStore {
  readonly depth: number;
  readonly #metadata: MemoryMetadataStore;

  constructor(metadata: MemoryMetadataStore, depth = DEFAULT_HISTORY_DEPTH) {
    this.#metadata = metadata;
    this.depth = depth;
  }

  async append(name: string, changes: TagChange[]): Promise<void> {
    const tags = this.#metadata.tagHistory(name);
    for (const change of changes) tags.set(change.tag, withChange(tags.get(change.tag) ?? [], structuredClone(change), this.depth));
  }

  async list(name: string, tag: string): Promise<TagChange[]> {
    return structuredClone(this.#metadata.tagHistory(name).get(tag) ?? []);
  }

  async listRepository(name: string): Promise<Map<string, TagChange[]>> {
    return structuredClone(this.#metadata.tagHistory(name));
  }
}

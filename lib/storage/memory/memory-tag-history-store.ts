import { DEFAULT_HISTORY_DEPTH, withChange, type TagChange, type TagHistoryStore } from '../../registry/tag-history.ts';

/** Tag history in memory: the fake for core unit tests. */
export class MemoryTagHistoryStore implements TagHistoryStore {
  readonly depth: number;
  readonly #repositories = new Map<string, Map<string, TagChange[]>>();

  constructor(depth = DEFAULT_HISTORY_DEPTH) {
    this.depth = depth;
  }

  async append(name: string, changes: TagChange[]): Promise<void> {
    let tags = this.#repositories.get(name);
    if (!tags) this.#repositories.set(name, (tags = new Map()));
    for (const change of changes) tags.set(change.tag, withChange(tags.get(change.tag) ?? [], structuredClone(change), this.depth));
  }

  async list(name: string, tag: string): Promise<TagChange[]> {
    return structuredClone(this.#repositories.get(name)?.get(tag) ?? []);
  }

  async listRepository(name: string): Promise<Map<string, TagChange[]>> {
    return structuredClone(this.#repositories.get(name) ?? new Map<string, TagChange[]>());
  }
}

import type { UsageStore } from '../../registry/ports.ts';
import { listAll } from '../../registry/retention-listing.ts';
import type { RepositoryFacts } from '../../registry/usage.ts';
import type { MemoryMetadataStore } from './memory-metadata-store.ts';

/** Usage read from a {@link MemoryMetadataStore}'s entries (the fake for core tests); computed per request, no summaries. */
export class MemoryUsageStore implements UsageStore {
  readonly #metadata: MemoryMetadataStore;

  constructor(metadata: MemoryMetadataStore) {
    this.#metadata = metadata;
  }

  async repositoryBlobs(name: string): Promise<Map<string, number>> {
    return (await this.repositoryFacts(name)).blobs as Map<string, number>;
  }

  async repositoryFacts(name: string): Promise<RepositoryFacts> {
    const facts = { name, blobs: new Map<string, number>(), manifests: 0, manifestBytes: 0, tags: 0 } satisfies RepositoryFacts;
    let lastPushedAt: number | undefined;
    let cursor: string | undefined;
    do {
      const page = await this.#metadata.scan(cursor, 1000);
      for (const entry of page.items) {
        if (entry.kind === 'link' && entry.name === name) facts.blobs.set(entry.digest, entry.size);
        if (entry.kind === 'manifest' && entry.name === name) {
          facts.manifests++;
          facts.manifestBytes += entry.manifest.content.byteLength;
          lastPushedAt = Math.max(lastPushedAt ?? 0, entry.storedAt);
        }
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
    facts.tags = (await listAll(async (page) => (await this.#metadata.listTags(name, page)) ?? { items: [], hasMore: false })).length;
    return lastPushedAt === undefined ? facts : { ...facts, lastPushedAt };
  }
}

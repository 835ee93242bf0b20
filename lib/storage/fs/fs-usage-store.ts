import { join } from 'node:path';
import type { UsageStore } from '../../registry/ports.ts';
import type { RepositoryFacts } from '../../registry/usage.ts';
import { listDir, listTwoLevels, readDated, statIfExists } from './data-dir-reads.ts';
import type { FsKeys } from './keys.ts';
import type { ManifestFile } from './manifest-file.ts';

/**
 * Usage read from a data dir's metadata files (keys.ts): a repository's `_blobs`, `_manifests` and `_tags`
 * directories, nothing else. No stored summaries: the registry-wide report walks every repository per request,
 * which on one machine costs a few file reads per image. Last push: the newest manifest or tag file.
 */
export class FsUsageStore implements UsageStore {
  readonly #keys: FsKeys;

  constructor(keys: FsKeys) {
    this.#keys = keys;
  }

  async repositoryBlobs(name: string): Promise<Map<string, number>> {
    const dir = join(this.#keys.repository(name), '_blobs');
    const files = (await listTwoLevels(dir)).filter(([, file]) => file.endsWith('.json'));
    const links = await Promise.all(files.map(([algorithm, file]) => readDated<{ size: number }>(join(dir, algorithm, file))));
    const blobs = new Map<string, number>();
    files.forEach(([algorithm, file], at) => {
      const link = links[at];
      if (link) blobs.set(`${algorithm}:${file.slice(0, -'.json'.length)}`, link.value.size);
    });
    return blobs;
  }

  async repositoryFacts(name: string): Promise<RepositoryFacts> {
    const manifestsDir = this.#keys.manifestsDir(name);
    const tagsDir = this.#keys.tagsDir(name);
    const [blobs, manifests, tags] = await Promise.all([
      this.repositoryBlobs(name),
      listTwoLevels(manifestsDir).then((files) => Promise.all(files.map(([algorithm, file]) => readDated<ManifestFile>(join(manifestsDir, algorithm, file))))),
      listDir(tagsDir).then((files) => Promise.all(files.map((tag) => statIfExists(join(tagsDir, tag))))),
    ]);
    const found = manifests.filter((manifest) => manifest !== undefined);
    const tagged = tags.filter((tag) => tag !== undefined);
    const manifestBytes = found.reduce((total, manifest) => total + Buffer.byteLength(manifest.value.content, 'base64'), 0);
    const facts: RepositoryFacts = { name, blobs, manifests: found.length, manifestBytes, tags: tagged.length };
    const lastPushedAt = Math.max(0, ...found.map((manifest) => manifest.at), ...tagged.map((tag) => tag.changedAt));
    return lastPushedAt > 0 ? { ...facts, lastPushedAt } : facts;
  }
}

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { UsageStore } from '../../registry/ports.ts';
import type { RepositoryFacts } from '../../registry/usage.ts';
import { isNotFound, readFileIfExists } from './atomic-file.ts';
import type { FsKeys } from './keys.ts';

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
    const blobs = new Map<string, number>();
    const dir = join(this.#keys.repository(name), '_blobs');
    for (const algorithm of await listDir(dir)) {
      const files = await listDir(join(dir, algorithm));
      const records = await Promise.all(files.filter((file) => file.endsWith('.json')).map((file) => readFileIfExists(join(dir, algorithm, file))));
      files.forEach((file, at) => {
        const text = records[at];
        if (text !== undefined) blobs.set(`${algorithm}:${file.slice(0, -'.json'.length)}`, (JSON.parse(text) as { size: number }).size);
      });
    }
    return blobs;
  }

  async repositoryFacts(name: string): Promise<RepositoryFacts> {
    const [blobs, manifests, tags] = await Promise.all([this.repositoryBlobs(name), this.#manifests(name), this.#tags(name)]);
    const facts: RepositoryFacts = { name, blobs, manifests: manifests.count, manifestBytes: manifests.bytes, tags: tags.count };
    const lastPushedAt = Math.max(manifests.newest, tags.newest);
    return lastPushedAt > 0 ? { ...facts, lastPushedAt } : facts;
  }

  async #manifests(name: string): Promise<{ count: number; bytes: number; newest: number }> {
    const dir = this.#keys.manifestsDir(name);
    const totals = { count: 0, bytes: 0, newest: 0 };
    for (const algorithm of await listDir(dir)) {
      for (const file of await listDir(join(dir, algorithm))) {
        const path = join(dir, algorithm, file);
        const [text, info] = await Promise.all([readFileIfExists(path), stat(path).catch(() => undefined)]);
        if (text === undefined || !info) continue;
        totals.count++;
        totals.bytes += Buffer.byteLength((JSON.parse(text) as { content: string }).content, 'base64');
        totals.newest = Math.max(totals.newest, info.mtimeMs);
      }
    }
    return totals;
  }

  async #tags(name: string): Promise<{ count: number; newest: number }> {
    const dir = this.#keys.tagsDir(name);
    const times = await Promise.all((await listDir(dir)).map(async (tag) => (await stat(join(dir, tag)).catch(() => undefined))?.mtimeMs));
    const found = times.filter((time): time is number => time !== undefined);
    return { count: found.length, newest: Math.max(0, ...found) };
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}

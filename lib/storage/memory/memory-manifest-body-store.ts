import type { ManifestBodyStore } from '../../registry/ports.ts';

/** Manifest bodies in memory: the fake for tests of stores that keep large manifests elsewhere. */
export class MemoryManifestBodyStore implements ManifestBodyStore {
  readonly #bodies = new Map<string, Uint8Array>();

  async put(digest: string, content: Uint8Array): Promise<void> {
    this.#bodies.set(digest, new Uint8Array(content));
  }

  async get(digest: string): Promise<Uint8Array | undefined> {
    const content = this.#bodies.get(digest);
    return content && new Uint8Array(content);
  }

  async delete(digest: string): Promise<void> {
    this.#bodies.delete(digest);
  }
}

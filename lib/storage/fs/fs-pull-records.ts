import { pulledToday } from '../../registry/last-pull.ts';
import type { ManifestActivity } from '../../registry/ports.ts';
import { readFileIfExists, removeFile, writeFileAtomic } from './atomic-file.ts';
import { listTwoLevels, statIfExists } from './data-dir-reads.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import type { FsKeys } from './keys.ts';

/**
 * The last pull of each manifest on the filesystem (lib/registry/last-pull.ts): one small file per manifest,
 * `_pulls/<alg>/<hex>` beside its `_manifests` record, holding the epoch ms. Apart from the manifest record so that
 * recording a pull never rewrites (and so never resurrects, or re-dates for garbage collection) a manifest; read in
 * parallel with the manifest record, so a pull's day check costs no extra round. Pulls through a tag and through the
 * digest share the file: one write per manifest and day.
 *
 * A pull racing the manifest's deletion may leave a pull file with no manifest: it is ignored (activity is listed
 * per manifest record), and a later push of the same digest starts with that true, older pull.
 */
export class FsPullRecords {
  readonly #keys: FsKeys;
  readonly #mutex = new KeyedMutex();

  constructor(keys: FsKeys) {
    this.#keys = keys;
  }

  async read(name: string, digest: string): Promise<number | undefined> {
    const text = await readFileIfExists(this.#keys.pull(name, digest));
    return text === undefined ? undefined : Number(text);
  }

  /** Writes `at` unless a pull of its day is on file or `stillThere` says the manifest (or the tag to it) is gone. */
  async record(name: string, digest: string, at: number, stillThere: () => Promise<boolean>): Promise<boolean> {
    // One writer per manifest in this process (the data dir's owner): the check and the write are one step.
    return this.#mutex.run(`${name}\u0000${digest}`, async () => {
      if (pulledToday(await this.read(name, digest), at) || !(await stillThere())) return false;
      await writeFileAtomic(this.#keys.tmpDir, this.#keys.pull(name, digest), String(at));
      return true;
    });
  }

  async remove(name: string, digest: string): Promise<void> {
    await removeFile(this.#keys.pull(name, digest));
  }

  /** Per manifest record of `name`: its file's time (its last push rewrote it) and its last pull. */
  async activity(name: string): Promise<Map<string, ManifestActivity>> {
    const activity = new Map<string, ManifestActivity>();
    await Promise.all(
      (await listTwoLevels(this.#keys.manifestsDir(name))).map(async ([algorithm, file]) => {
        const digest = `${algorithm}:${file.replace(/\.json$/, '')}`;
        const [info, pulledAt] = await Promise.all([statIfExists(this.#keys.manifest(name, digest)), this.read(name, digest)]);
        if (info === undefined) return;
        activity.set(digest, pulledAt === undefined ? { pushedAt: info.changedAt } : { pushedAt: info.changedAt, pulledAt });
      }),
    );
    return activity;
  }
}

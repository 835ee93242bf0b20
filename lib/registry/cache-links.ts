import type { MetadataStore } from './ports.ts';
import { QuotaExceededError, type QuotaGuard } from './quota.ts';
import type { BlobRecord } from './types.ts';

/**
 * Links stored blobs into cached repositories (pull-through-cache.ts) within their quota (quota.ts), as a mount
 * would be linked. Over the quota the pull still works: the blob is served from where it is stored without being
 * linked (another repository keeps it, or gc removes it later), and the log says so. A cache that fails
 * `docker pull` to save storage breaks deploys (Harbor counts proxy-cache projects against their quota and fails
 * such pulls: goharbor/harbor#13314; here the quota bounds what the cache keeps, not what it serves).
 */
export class CacheLinks {
  readonly #metadata: MetadataStore;
  readonly #quota: QuotaGuard | undefined;
  readonly #log: ((entry: Record<string, unknown>) => void) | undefined;

  constructor(metadata: MetadataStore, quota: QuotaGuard | undefined, log: ((entry: Record<string, unknown>) => void) | undefined) {
    this.#metadata = metadata;
    this.#quota = quota;
    this.#log = log;
  }

  /** Whether quotas apply: a fill then checks the upstream's declared size before storing (BlobFills). */
  get quota(): QuotaGuard | undefined {
    return this.#quota;
  }

  /** Links `record` into `name` (idempotent); over `name`'s quota, returns it unlinked and logs a warning. */
  async link(name: string, record: BlobRecord): Promise<BlobRecord> {
    const link = async () => {
      await this.#metadata.linkBlob(name, record);
      return record;
    };
    if (!this.#quota) return link();
    try {
      return await this.#quota.admit(name, record.digest, record.size, link);
    } catch (error) {
      if (!(error instanceof QuotaExceededError)) throw error;
      this.overQuota(name, record, error, 'cached blob over quota: served, not kept');
      return record;
    }
  }

  /** The log line of a blob the quota kept out of `name`. */
  overQuota(name: string, blob: { digest: string; size: number }, error: QuotaExceededError, msg: string): void {
    this.#log?.({ level: 'warn', msg, name, digest: blob.digest, size: blob.size, cause: error.message });
  }
}

import { OciError } from './errors.ts';
import type { PolicyCache } from './policy-cache.ts';
import type { UsageStore } from './ports.ts';

/** How long a finished reservation still counts for checks whose read began before it finished. */
const RELEASED_KEPT_MS = 60_000;

interface Reservation {
  digest: string;
  size: number;
  /** When its blob was linked (performance.now()); undefined while in flight. */
  linkedAt?: number;
}

/**
 * Repository quotas (policy `quotaBytes`): a blob is admitted into a repository only if the repository's stored
 * bytes (the blobs linked into it, usage.ts) plus the blob stay within the quota. The check runs when an upload
 * completes, after its last byte arrived and before the blob is committed (the upload is discarded on refusal,
 * nothing is kept), and before a mount links a blob. A blob the repository already links adds nothing, and
 * manifest pushes link no bytes: they always pass. Repositories without a quota cost no read at all.
 *
 * Within one process, admissions to a repository are counted against each other (in-flight reservations), so
 * concurrent uploads to `ocireg serve` cannot overshoot. Across processes (Lambda instances) the check and the link
 * are not one atomic step, and concurrent commits can overshoot, each by at most its own blob:
 * ```
 *   quota 1000 MB; the repository holds 900 MB
 *   instance A (layer a, 80 MB)                 instance B (layer b, 90 MB)
 *   ─────────────────────────────────────────   ─────────────────────────────────────────
 *   read links: 900 MB; 900 + 80 ≤ 1000 ✓
 *                                               read links: 900 MB; 900 + 90 ≤ 1000 ✓
 *   commit a, link a (980 MB)
 *                                               commit b, link b (1070 MB: 70 MB over)
 *   the next upload, anywhere: 1070 + x > 1000 ✗ DENIED
 * ```
 * The overshoot is bounded by the blobs that instances other than the one that crosses the line commit during
 * one another's check-to-link window (a few hundred ms after the last byte): at most (concurrent instances − 1) ×
 * the largest blob. Exact cross-instance accounting would need a counter updated in the link's own transaction
 * (docs/api.md, "Usage and quotas", says why it is not done).
 *
 * Within a process, a reservation read before the store's links could miss a blob linked between the two reads:
 * ```
 *   check C reads links (L does not show yet)     upload U links L, drops its reservation
 *   C reads reservations: U's is gone → L counted by nobody
 * ```
 * so a finished reservation is kept for {@link RELEASED_KEPT_MS} and still counted by checks whose read began
 * before it finished (a blob both linked and reserved is counted once, by digest).
 */
export class QuotaGuard {
  readonly #policies: PolicyCache;
  readonly #usage: UsageStore;
  readonly #reservations = new Map<string, Set<Reservation>>();

  constructor(policies: PolicyCache, usage: UsageStore) {
    this.#policies = policies;
    this.#usage = usage;
  }

  /**
   * Runs `store` (commits `digest`, `size` bytes, and links it into `name`) if the repository's quota allows it;
   * throws DENIED naming the policy and the numbers otherwise, without calling `store`.
   */
  async admit<T>(name: string, digest: string, size: number, store: () => Promise<T>): Promise<T> {
    const policy = await this.#policies.policyFor(name);
    if (policy?.quotaBytes === undefined) return store();
    const readStarted = performance.now();
    const linked = await this.#usage.repositoryBlobs(name);
    if (linked.has(digest)) return store();
    // From here to the reservation no await: checks in this process are serialised against each other.
    const counted = new Map(linked);
    const reservations = this.#reservationsOf(name);
    for (const reservation of reservations) {
      if (reservation.linkedAt === undefined || reservation.linkedAt >= readStarted) counted.set(reservation.digest, reservation.size);
    }
    counted.delete(digest);
    const holds = [...counted.values()].reduce((total, bytes) => total + bytes, 0);
    if (holds + size > policy.quotaBytes) throw new QuotaExceededError(name, { glob: policy.glob, quotaBytes: policy.quotaBytes }, digest, size, holds);
    const reservation: Reservation = { digest, size };
    reservations.add(reservation);
    try {
      const result = await store();
      reservation.linkedAt = performance.now();
      return result;
    } catch (error) {
      reservations.delete(reservation);
      throw error;
    }
  }

  #reservationsOf(name: string): Set<Reservation> {
    let reservations = this.#reservations.get(name);
    if (!reservations) {
      reservations = new Set();
      this.#reservations.set(name, reservations);
    }
    const now = performance.now();
    for (const reservation of reservations) if (reservation.linkedAt !== undefined && now - reservation.linkedAt > RELEASED_KEPT_MS) reservations.delete(reservation);
    return reservations;
  }
}

/** DENIED (403) for a blob that would take a repository over its quota; docker, skopeo and containerd print the message. */
export class QuotaExceededError extends OciError {
  constructor(name: string, policy: { glob: string; quotaBytes: number }, digest: string, size: number, holds: number) {
    super(
      'DENIED',
      `quota exceeded: ${name} holds ${holds} bytes and blob ${digest} adds ${size}, which would make ${holds + size} bytes, over the quota of ${policy.quotaBytes} bytes (policy ${policy.glob}). ` +
        'Delete images and run ocireg gc, or raise the quota with ocireg policy set',
      { name, policy: policy.glob, quotaBytes: policy.quotaBytes, storedBytes: holds, digest, blobBytes: size },
    );
    this.name = 'QuotaExceededError';
  }
}

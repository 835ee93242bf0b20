import type { RepositoryPolicy } from './policy.ts';
import type { ManifestActivity, MetadataStore, UsageStore } from './ports.ts';
import { listAll } from './retention-listing.ts';
import { reportOf, summarize, type RepositoryFacts, type UsageReport, type UsageSummary } from './usage.ts';

/** Repositories read at once while computing a summary (a few requests each on DynamoDB). */
const PARALLEL_REPOSITORIES = 8;

export interface UsageReportsOptions {
  /** Lists the repositories (the catalog) and their manifests' recorded pulls and pushes. */
  metadata: Pick<MetadataStore, 'listRepositories' | 'manifestActivity'>;
  usage: UsageStore;
  /** The storage policies as stored (a PolicyCache in the registry, the store itself in the CLI). */
  policies: () => Promise<RepositoryPolicy[]>;
  /** Set on AWS: reports carry the estimated monthly storage cost at this price (usage-cost.ts). */
  pricePerGbMonthUsd?: number;
  now?: () => number;
}

/**
 * Usage reports over the stores. {@link compute} reads every repository of the catalog (one pass over the
 * metadata: `ocireg usage`, GC runs) and stores the summary where the backend keeps one. {@link report} answers the
 * HTTP API: from the stored summary where there is one (DynamoDB: a request never scans the table; the figures are
 * as of `computedAt`), else computed on the spot (memory, fs: a walk of the metadata directory, figures of now).
 *
 * Repositories are those of the catalog: blobs pushed to a repository that has no manifest yet are not listed
 * (they count against its quota all the same: quota.ts reads the repository itself).
 */
export class UsageReports {
  readonly #options: UsageReportsOptions;
  readonly #now: () => number;

  constructor(options: UsageReportsOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Computes the whole registry's summary now, and stores it where the backend keeps summaries. */
  async compute(): Promise<UsageSummary> {
    const computedAt = this.#now();
    const names = await listAll((page) => this.#options.metadata.listRepositories(page));
    const facts: RepositoryFacts[] = [];
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const name = names[next++]!;
        const [found, activity] = await Promise.all([this.#options.usage.repositoryFacts(name), this.#options.metadata.manifestActivity(name)]);
        facts.push(withActivity(found, activity.values()));
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_REPOSITORIES, names.length) }, worker));
    const summary = summarize(facts, computedAt);
    await this.#options.usage.summaries?.write(summary);
    return summary;
  }

  /** The report for a caller who may pull the repositories `visible` accepts (all when undefined). */
  async report(visible?: (name: string) => boolean): Promise<UsageReport> {
    const summaries = this.#options.usage.summaries;
    const [summary, policies] = await Promise.all([summaries ? summaries.read() : this.compute(), this.#options.policies()]);
    return this.reportOf(summary, policies, visible);
  }

  /** A report of `summary` as one caller sees it. */
  reportOf(summary: UsageSummary | undefined, policies: readonly RepositoryPolicy[], visible?: (name: string) => boolean): UsageReport {
    return reportOf(summary, {
      policies,
      ...(visible ? { visible } : {}),
      ...(this.#options.pricePerGbMonthUsd !== undefined ? { pricePerGbMonthUsd: this.#options.pricePerGbMonthUsd } : {}),
    });
  }
}

/** The last pull is the newest recorded on any manifest (last-pull.ts: to the day); a push dated there counts too. */
function withActivity(facts: RepositoryFacts, activity: Iterable<ManifestActivity>): RepositoryFacts {
  let { lastPushedAt, lastPulledAt } = facts;
  for (const { pushedAt, pulledAt } of activity) {
    if (pushedAt !== undefined) lastPushedAt = Math.max(lastPushedAt ?? 0, pushedAt);
    if (pulledAt !== undefined) lastPulledAt = Math.max(lastPulledAt ?? 0, pulledAt);
  }
  return { ...facts, ...(lastPushedAt !== undefined ? { lastPushedAt } : {}), ...(lastPulledAt !== undefined ? { lastPulledAt } : {}) };
}

import { policyFor, type RepositoryPolicy } from './policy.ts';
import { estimatedMonthlyCostUsd } from './usage-cost.ts';

/**
 * Storage usage per repository, as `ocireg usage` prints it and `GET /v2/_ocireg/usage` answers it (docs/api.md).
 *
 * A repository's stored bytes are the blobs linked into it (layers and configs): `uniqueBytes` for those no other
 * repository links, `sharedBytes` for those another repository links too (the bytes are stored once: deleting this
 * repository frees only its unique bytes). Manifests are counted apart (`manifestBytes`, a few KB each). Quotas
 * (quota.ts) compare `storedBytes` against the policy's `quotaBytes`.
 */

/** What one repository holds, read from the stores by {@link UsageStore.repositoryFacts} (one repository's items only). */
export interface RepositoryFacts {
  name: string;
  /** Blobs linked into the repository: digest → size. */
  blobs: ReadonlyMap<string, number>;
  manifests: number;
  /** Bytes of the manifests' own content. */
  manifestBytes: number;
  tags: number;
  /** The latest manifest or tag write (epoch ms), when the backend records one. */
  lastPushedAt?: number;
  /** The latest recorded pull (epoch ms; pulls are recorded at most once a day per manifest), when recorded. */
  lastPulledAt?: number;
}

/** One repository's line in a summary. Times are epoch ms. */
export interface RepositoryUsageFigures {
  name: string;
  storedBytes: number;
  uniqueBytes: number;
  sharedBytes: number;
  manifestBytes: number;
  tags: number;
  manifests: number;
  lastPushedAt?: number;
  lastPulledAt?: number;
}

/** A blob linked into more than one repository: counted once in a total, whichever of them the caller sees. */
export interface SharedBlob {
  digest: string;
  size: number;
  repositories: string[];
}

/** The whole registry's usage at `computedAt`: what a GC run or `ocireg usage` stores and the HTTP API reads. */
export interface UsageSummary {
  computedAt: number;
  repositories: RepositoryUsageFigures[];
  shared: SharedBlob[];
}

/** A repository as the API answers it (docs/api.md): times in RFC 3339, null when unknown. */
export interface RepositoryUsage extends Omit<RepositoryUsageFigures, 'lastPushedAt' | 'lastPulledAt'> {
  lastPushedAt: string | null;
  lastPulledAt: string | null;
  /** The quota of the policy in force, when it has one. */
  quotaBytes?: number;
  /** The glob of the policy in force. */
  policy?: string;
}

/** The answer of `GET /v2/_ocireg/usage` and `ocireg usage --json`. */
export interface UsageReport {
  /** When the figures were computed (RFC 3339): now for the local backends, the last stored summary on AWS. */
  computedAt: string | null;
  repositories: RepositoryUsage[];
  /** Bytes of the listed repositories' blobs, each blob counted once. */
  totalBytes: number;
  /** totalBytes at {@link pricePerGbMonthUsd} (AWS only). */
  estimatedMonthlyCostUsd?: number;
  pricePerGbMonthUsd?: number;
  /** The policies in force for the listed repositories (all of them when the caller sees every repository), as stored. */
  policies: RepositoryPolicy[];
}

/** The summary of the repositories whose facts are given: which bytes are unique, which shared. */
export function summarize(facts: readonly RepositoryFacts[], computedAt: number): UsageSummary {
  const holders = new Map<string, { size: number; repositories: string[] }>();
  for (const repository of facts) {
    for (const [digest, size] of repository.blobs) {
      const holder = holders.get(digest);
      if (holder) holder.repositories.push(repository.name);
      else holders.set(digest, { size, repositories: [repository.name] });
    }
  }
  const repositories = facts.map((repository): RepositoryUsageFigures => {
    let uniqueBytes = 0;
    let sharedBytes = 0;
    for (const [digest, size] of repository.blobs) {
      if (holders.get(digest)!.repositories.length > 1) sharedBytes += size;
      else uniqueBytes += size;
    }
    const figures: RepositoryUsageFigures = {
      name: repository.name,
      storedBytes: uniqueBytes + sharedBytes,
      uniqueBytes,
      sharedBytes,
      manifestBytes: repository.manifestBytes,
      tags: repository.tags,
      manifests: repository.manifests,
    };
    if (repository.lastPushedAt !== undefined) figures.lastPushedAt = repository.lastPushedAt;
    if (repository.lastPulledAt !== undefined) figures.lastPulledAt = repository.lastPulledAt;
    return figures;
  });
  repositories.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const shared = [...holders]
    .filter(([, holder]) => holder.repositories.length > 1)
    .map(([digest, holder]): SharedBlob => ({ digest, size: holder.size, repositories: [...holder.repositories].sort() }));
  return { computedAt, repositories, shared };
}

export interface ReportOptions {
  /** The repositories the caller may pull; undefined: all of them (no auth, or an admin). */
  visible?: (name: string) => boolean;
  policies: readonly RepositoryPolicy[];
  /** Set on AWS: the report carries the estimated monthly cost. */
  pricePerGbMonthUsd?: number;
}

/**
 * What one caller sees of a summary: only the repositories it may pull, and a total that counts a shared blob once
 * if any of them holds it (so a total never reveals bytes of repositories the caller cannot see).
 */
export function reportOf(summary: UsageSummary | undefined, options: ReportOptions): UsageReport {
  const visible = options.visible ?? (() => true);
  const listed = (summary?.repositories ?? []).filter((repository) => visible(repository.name));
  let totalBytes = listed.reduce((total, repository) => total + repository.uniqueBytes, 0);
  for (const blob of summary?.shared ?? []) if (blob.repositories.some(visible)) totalBytes += blob.size;
  const inForce = new Map<string, RepositoryPolicy>();
  const repositories = listed.map((figures): RepositoryUsage => {
    const repository: RepositoryUsage = {
      name: figures.name,
      storedBytes: figures.storedBytes,
      uniqueBytes: figures.uniqueBytes,
      sharedBytes: figures.sharedBytes,
      manifestBytes: figures.manifestBytes,
      tags: figures.tags,
      manifests: figures.manifests,
      lastPushedAt: isoOrNull(figures.lastPushedAt),
      lastPulledAt: isoOrNull(figures.lastPulledAt),
    };
    const policy = policyFor(options.policies, figures.name);
    if (policy) {
      inForce.set(policy.glob, policy);
      repository.policy = policy.glob;
      if (policy.quotaBytes !== undefined) repository.quotaBytes = policy.quotaBytes;
    }
    return repository;
  });
  // A caller who sees everything sees every policy; others only those that apply to what they see (globs can name teams).
  const policies = (options.visible === undefined ? [...options.policies] : [...inForce.values()]).sort((a, b) => (a.glob < b.glob ? -1 : a.glob > b.glob ? 1 : 0));
  const report: UsageReport = { computedAt: summary ? new Date(summary.computedAt).toISOString() : null, repositories, totalBytes, policies };
  if (options.pricePerGbMonthUsd !== undefined) {
    report.estimatedMonthlyCostUsd = estimatedMonthlyCostUsd(totalBytes, options.pricePerGbMonthUsd);
    report.pricePerGbMonthUsd = options.pricePerGbMonthUsd;
  }
  return report;
}

function isoOrNull(at: number | undefined): string | null {
  return at === undefined ? null : new Date(at).toISOString();
}

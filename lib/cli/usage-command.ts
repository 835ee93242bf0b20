import { resolve } from 'node:path';
import type { RepositoryPolicy } from '../registry/policy.ts';
import type { MetadataStore, UsageStore } from '../registry/ports.ts';
import { S3_STANDARD_USD_PER_GB_MONTH } from '../registry/usage-cost.ts';
import { UsageReports } from '../registry/usage-reports.ts';
import type { UsageReport } from '../registry/usage.ts';
import { FsMetadataStore } from '../storage/fs/fs-metadata-store.ts';
import { FsPolicyStore } from '../storage/fs/fs-policy-store.ts';
import { FsUsageStore } from '../storage/fs/fs-usage-store.ts';
import { FsKeys } from '../storage/fs/keys.ts';
import { parse, print, say } from './admin-arguments.ts';
import { formatSize } from './byte-size.ts';
import { UsageError, type Command } from './command.ts';
import { STORE_USAGE } from './identity-store-option.ts';

export const usage = `usage      storage per repository: stored bytes (unique and shared with other repositories), tags, manifests,
             last push and pull, quota; the total (each blob once) and, for a deployed registry, the monthly cost
             --json                        print the report as JSON (the shape of GET /v2/_ocireg/usage)
             --price-per-gb-month <usd>    storage price for the estimate (default ${S3_STANDARD_USD_PER_GB_MONTH}, S3 Standard us-east-1)
${STORE_USAGE}
             Reads every repository once; with --stack or --table it also stores the summary the HTTP API serves.`;

/**
 * `ocireg usage`: computes the report now, over the data dir (reading only: a running `ocireg serve` is not
 * disturbed) or the deployed table (one Query per repository and kind of item, no table scan; the summary is
 * stored for `GET /v2/_ocireg/usage`). See README "Keeping storage (and the bill) in check".
 */
export const run: Command = async (args) => {
  const { values, positionals } = parse(args, { json: { type: 'boolean', default: false }, 'price-per-gb-month': { type: 'string' } });
  if (positionals.length > 0) throw new UsageError(`usage takes no arguments, got ${positionals.join(' ')}`);
  if (values.stack !== undefined && values.table !== undefined) throw new UsageError('give --stack or --table, not both');
  const deployed = values.stack !== undefined || values.table !== undefined;
  const price = priceOf(values['price-per-gb-month'], deployed);
  const stores = deployed ? await deployedStores(values) : localStores(values['data-dir'] as string);
  const reports = new UsageReports({ ...stores, ...(price !== undefined ? { pricePerGbMonthUsd: price } : {}) });
  const started = performance.now();
  const summary = await reports.compute();
  const report = reports.reportOf(summary, await stores.policies());
  say(`computed over ${report.repositories.length} repositories in ${Math.round(performance.now() - started)} ms${deployed ? '; summary stored for GET /v2/_ocireg/usage' : ''}`);
  if (values.json) print(JSON.stringify(report, null, 2));
  else print(formatReport(report));
  return 0;
};

function priceOf(value: unknown, deployed: boolean): number | undefined {
  if (typeof value !== 'string') return deployed ? S3_STANDARD_USD_PER_GB_MONTH : undefined;
  const price = Number(value);
  if (value.trim() === '' || !Number.isFinite(price) || price < 0) throw new UsageError(`--price-per-gb-month is a price in USD, 0 or more, like 0.023, got "${value}"`);
  return price;
}

interface Stores {
  metadata: Pick<MetadataStore, 'listRepositories' | 'manifestActivity'>;
  usage: UsageStore;
  policies: () => Promise<RepositoryPolicy[]>;
}

/** The data dir's files, read directly: opening it as storage would clear tmp/, which a running serve owns. */
function localStores(dataDir: string): Stores {
  const keys = new FsKeys(resolve(dataDir));
  const policies = new FsPolicyStore(keys);
  return { metadata: new FsMetadataStore(keys), usage: new FsUsageStore(keys), policies: () => policies.listPolicies() };
}

async function deployedStores(values: Record<string, unknown>): Promise<Stores> {
  const [{ openDeployedTable }, { DynamoDbMetadataStore }, { DynamoDbUsageStore }, { DynamoDbPolicyStore }] = await Promise.all([
    import('../storage/dynamodb/deployed-identity-store.ts'),
    import('../storage/dynamodb/dynamodb-metadata-store.ts'),
    import('../storage/dynamodb/dynamodb-usage-store.ts'),
    import('../storage/dynamodb/dynamodb-policy-store.ts'),
  ]);
  const table = await openDeployedTable({ stack: values.stack as string | undefined, table: values.table as string | undefined, region: values.region as string | undefined });
  const policies = new DynamoDbPolicyStore(table);
  return { metadata: new DynamoDbMetadataStore(table), usage: new DynamoDbUsageStore(table), policies: () => policies.listPolicies() };
}

/** One line per repository, then the total. */
export function formatReport(report: UsageReport): string {
  const header = ['REPOSITORY', 'STORED', 'UNIQUE', 'SHARED', 'TAGS', 'MANIFESTS', 'LAST PUSH', 'LAST PULL', 'QUOTA'];
  const rows = report.repositories.map((repository) => [
    repository.name,
    formatSize(repository.storedBytes),
    formatSize(repository.uniqueBytes),
    formatSize(repository.sharedBytes),
    String(repository.tags),
    String(repository.manifests),
    repository.lastPushedAt?.slice(0, 16).replace('T', ' ') ?? '-',
    repository.lastPulledAt?.slice(0, 10) ?? '-',
    repository.quotaBytes === undefined ? '-' : `${formatSize(repository.quotaBytes)} (${Math.round((repository.storedBytes / repository.quotaBytes) * 100)}%)`,
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const lines = [header, ...rows].map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd());
  let total = `total ${formatSize(report.totalBytes)} in ${report.repositories.length} repositories (each blob counted once)`;
  if (report.estimatedMonthlyCostUsd !== undefined) total += `; about $${report.estimatedMonthlyCostUsd.toFixed(2)} a month at $${report.pricePerGbMonthUsd}/GB-month`;
  return [...lines, total].join('\n');
}

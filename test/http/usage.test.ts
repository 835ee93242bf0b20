import { describe, expect, it } from 'vitest';
import { bytesOf } from '../../lib/registry/bytes.ts';
import type { RepositoryPolicy } from '../../lib/registry/policy.ts';
import { estimatedMonthlyCostUsd, S3_STANDARD_USD_PER_GB_MONTH } from '../../lib/registry/usage-cost.ts';
import { reportOf, summarize, type RepositoryFacts, type UsageReport } from '../../lib/registry/usage.ts';
import { authRegistry } from '../support/auth-registry.ts';
import { imageManifest, randomBlob, type Blob } from '../support/builders.ts';

const policy = (glob: string, fields: Partial<RepositoryPolicy> = {}): RepositoryPolicy => ({ glob, protect: [], immutable: false, mutableTags: [], updatedAt: 1, ...fields });
const facts = (name: string, blobs: Array<[string, number]>): RepositoryFacts => ({ name, blobs: new Map(blobs), manifests: 1, manifestBytes: 500, tags: 1 });

describe('usage summaries and reports', () => {
  const summary = summarize([facts('team/a', [['sha256:base', 1000], ['sha256:a', 10]]), facts('team/b', [['sha256:base', 1000], ['sha256:b', 20]]), facts('secret/c', [['sha256:base', 1000], ['sha256:c', 40]])], 0);

  it('splits each repository into unique and shared bytes, and counts a shared blob once in the total', () => {
    const report = reportOf(summary, { policies: [] });
    expect(report.repositories.map(({ name, storedBytes, uniqueBytes, sharedBytes }) => [name, storedBytes, uniqueBytes, sharedBytes])).toEqual([
      ['secret/c', 1040, 40, 1000],
      ['team/a', 1010, 10, 1000],
      ['team/b', 1020, 20, 1000],
    ]);
    expect(report.totalBytes).toBe(1000 + 10 + 20 + 40);
    expect(summary.shared).toEqual([{ digest: 'sha256:base', size: 1000, repositories: ['secret/c', 'team/a', 'team/b'] }]);
  });

  it('shows a caller only what it may pull: repositories, total and the policies in force for them', () => {
    const policies = [policy('team/*', { quotaBytes: 5000 }), policy('secret/*', { keepLast: 1 }), policy('**', { immutable: true })];
    const report = reportOf(summary, { policies, visible: (name) => name.startsWith('team/') });
    expect(report.repositories.map((repository) => repository.name)).toEqual(['team/a', 'team/b']);
    expect(report.totalBytes).toBe(1000 + 10 + 20);
    expect(report.policies.map((found) => found.glob)).toEqual(['team/*']);
    expect(report.repositories[0]).toMatchObject({ quotaBytes: 5000, policy: 'team/*' });
  });

  it('prices GB-months of 2^30 bytes', () => {
    expect(estimatedMonthlyCostUsd(100 * 2 ** 30, S3_STANDARD_USD_PER_GB_MONTH)).toBe(2.3);
    const report = reportOf(summary, { policies: [], pricePerGbMonthUsd: 0.0125 });
    expect(report).toMatchObject({ pricePerGbMonthUsd: 0.0125, estimatedMonthlyCostUsd: estimatedMonthlyCostUsd(1070, 0.0125) });
  });
});

describe('GET /v2/_ocireg/usage with auth', () => {
  async function pushDirect(registry: Awaited<ReturnType<typeof authRegistry>>['registry'], name: string, blobs: Blob[]) {
    for (const blob of blobs) await registry.uploads.monolithic(name, blob.digest, bytesOf(blob.bytes), blob.size);
    const manifest = imageManifest(blobs[0]!, blobs.slice(1));
    await registry.putManifest(name, 'v1', bytesOf(manifest.bytes), manifest.mediaType, manifest.bytes.byteLength);
  }

  it('challenges without a token and lists only the repositories the caller may pull', async () => {
    // Prepare
    const target = await authRegistry({ usage: true });
    const shared = randomBlob(3000);
    await pushDirect(target.registry, 'team/app', [randomBlob(100), shared]);
    await pushDirect(target.registry, 'secret/app', [randomBlob(200), shared, randomBlob(5000)]);
    const alice = await target.addUser('alice', [['team/*', 'pull']]);
    // Act
    const anonymous = await target.call('GET', '/v2/_ocireg/usage', undefined);
    const token = await target.bearer(['registry:catalog:*'], alice);
    const answered = await target.call('GET', '/v2/_ocireg/usage', token);
    // Assess
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toContain('scope="registry:catalog:*"');
    expect(answered.status).toBe(200);
    const report = answered.json() as UsageReport;
    expect(report.repositories).toEqual([expect.objectContaining({ name: 'team/app', storedBytes: 3100, uniqueBytes: 100, sharedBytes: 3000, tags: 1, manifests: 1 })]);
    expect(report.totalBytes).toBe(3100);
  });
});

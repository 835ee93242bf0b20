import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRegistryApp } from '../../lib/http/app.ts';
import type { HttpHandler } from '../../lib/http/types.ts';
import type { RepositoryPolicy } from '../../lib/registry/policy.ts';
import { PolicyCache } from '../../lib/registry/policy-cache.ts';
import type { BlobStore, MetadataStore, PolicyStore, UsageStore } from '../../lib/registry/ports.ts';
import { dayStart } from '../../lib/registry/last-pull.ts';
import { Registry } from '../../lib/registry/registry.ts';
import type { TagHistoryStore } from '../../lib/registry/tag-history.ts';
import { estimatedMonthlyCostUsd } from '../../lib/registry/usage-cost.ts';
import type { UsageReport } from '../../lib/registry/usage.ts';
import { call } from '../support/app-client.ts';
import { imageManifest, randomBlob, type Blob } from '../support/builders.ts';

/** Fresh, empty stores of one backend (a new temp dir, table or map each time). */
export interface UsageBackend {
  blobs: BlobStore;
  metadata: MetadataStore;
  usage: UsageStore;
  policies: PolicyStore;
  /** The tag history, as `ocireg serve` and the Lambda wire it (DynamoDB's last push comes from it). */
  history: TagHistoryStore;
  /** As the Lambda sets it. */
  pricePerGbMonthUsd?: number;
}

function policy(glob: string, fields: Partial<RepositoryPolicy>): RepositoryPolicy {
  return { glob, protect: [], immutable: false, mutableTags: [], updatedAt: 1, ...fields };
}

async function setup(open: () => Promise<UsageBackend>) {
  const backend = await open();
  const registry = new Registry({
    blobs: backend.blobs,
    metadata: backend.metadata,
    history: backend.history,
    policies: new PolicyCache(backend.policies, 0),
    usage: backend.usage,
    ...(backend.pricePerGbMonthUsd !== undefined ? { pricePerGbMonthUsd: backend.pricePerGbMonthUsd } : {}),
  });
  const failures: unknown[] = [];
  const app = createRegistryApp({ registry, log: (_line, cause) => cause !== undefined && failures.push(cause) });
  return { ...backend, registry, app, failures };
}

/** POST, one PATCH, PUT ?digest= (skopeo's flow). */
async function chunkedUpload(app: HttpHandler, name: string, blob: Blob) {
  const started = await call(app, 'POST', `/v2/${name}/blobs/uploads/`);
  expect(started.status).toBe(202);
  const location = started.headers.location!;
  const patched = await call(app, 'PATCH', location, { body: blob.bytes, headers: { 'content-range': `0-${blob.size - 1}` } });
  expect(patched.status).toBe(202);
  const separator = patched.headers.location!.includes('?') ? '&' : '?';
  return call(app, 'PUT', `${patched.headers.location!}${separator}digest=${blob.digest}`);
}

/** POST ?digest= with the whole body. */
const monolithicUpload = (app: HttpHandler, name: string, blob: Blob) => call(app, 'POST', `/v2/${name}/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes });

async function pushImage(app: HttpHandler, name: string, tags: string[], config: Blob, layers: Blob[]) {
  for (const blob of [config, ...layers]) {
    if ((await call(app, 'HEAD', `/v2/${name}/blobs/${blob.digest}`)).status === 200) continue;
    expect((await monolithicUpload(app, name, blob)).status).toBe(201);
  }
  const manifest = imageManifest(config, layers);
  for (const tag of tags) expect((await call(app, 'PUT', `/v2/${name}/manifests/${tag}`, { body: manifest.bytes, headers: { 'content-type': manifest.mediaType } })).status).toBe(201);
  return manifest;
}

function deniedError(response: { status: number; json(): any }) {
  expect(response.status).toBe(403);
  const [error] = response.json().errors as Array<{ code: string; message: string; detail: Record<string, unknown> }>;
  expect(error!.code).toBe('DENIED');
  return error!;
}

/**
 * Usage and quotas through the HTTP app on one backend: what `GET /v2/_ocireg/usage` reports after real pushes, and
 * which blob pushes a quota refuses. Where the backend keeps summaries (DynamoDB), the report reads the summary a
 * computation stored, as on AWS.
 */
export function usageContract(label: string, open: () => Promise<UsageBackend>): void {
  describe(`usage and quotas (${label})`, () => {
    it('reports stored, unique and shared bytes, tags, manifests and last push per repository', async () => {
      // Prepare: a and b share a layer; a has two tags on one manifest.
      const { app, registry, usage, failures, pricePerGbMonthUsd } = await setup(open);
      const prefix = `usage-${randomBytes(4).toString('hex')}`;
      const [configA, configB, shared, onlyA, onlyB] = [randomBlob(100), randomBlob(120), randomBlob(5000), randomBlob(3000), randomBlob(7000)];
      const started = Date.now();
      const manifestA = await pushImage(app, `${prefix}/a`, ['v1', 'latest'], configA!, [shared!, onlyA!]);
      const manifestB = await pushImage(app, `${prefix}/b`, ['v1'], configB!, [shared!, onlyB!]);
      expect((await call(app, 'GET', `/v2/${prefix}/a/manifests/v1`, { headers: { accept: manifestA.mediaType } })).status).toBe(200);
      if (usage.summaries) {
        // Before any computation a summary-backed report is empty, and says so.
        expect((await call(app, 'GET', '/v2/_ocireg/usage')).json()).toMatchObject({ computedAt: null, repositories: [] });
        await registry.usage!.compute();
      }
      // Act
      const response = await call(app, 'GET', '/v2/_ocireg/usage');
      // Assess
      expect(response.status).toBe(200);
      const report = response.json() as UsageReport;
      expect(report.repositories.map((repository) => repository.name)).toEqual([`${prefix}/a`, `${prefix}/b`]);
      const [a, b] = report.repositories;
      expect(a).toMatchObject({ storedBytes: 100 + 5000 + 3000, uniqueBytes: 100 + 3000, sharedBytes: 5000, manifestBytes: manifestA.bytes.byteLength, tags: 2, manifests: 1 });
      expect(b).toMatchObject({ storedBytes: 120 + 5000 + 7000, uniqueBytes: 120 + 7000, sharedBytes: 5000, manifestBytes: manifestB.bytes.byteLength, tags: 1, manifests: 1, lastPulledAt: null });
      // Pulls are recorded to the day (last-pull.ts): a's pull is today's.
      expect(Date.parse(a!.lastPulledAt!)).toBeGreaterThanOrEqual(dayStart(started));
      for (const repository of [a!, b!]) {
        expect(Date.parse(repository.lastPushedAt!)).toBeGreaterThanOrEqual(started - 2000);
        expect(Date.parse(repository.lastPushedAt!)).toBeLessThanOrEqual(Date.now() + 2000);
      }
      expect(report.totalBytes).toBe(100 + 120 + 5000 + 3000 + 7000);
      expect(Date.parse(report.computedAt!)).toBeGreaterThanOrEqual(started);
      if (pricePerGbMonthUsd !== undefined) {
        expect(report.pricePerGbMonthUsd).toBe(pricePerGbMonthUsd);
        expect(report.estimatedMonthlyCostUsd).toBe(estimatedMonthlyCostUsd(report.totalBytes, pricePerGbMonthUsd));
      } else {
        expect(report).not.toHaveProperty('estimatedMonthlyCostUsd');
      }
      expect(failures).toEqual([]);
    });

    it('lists the policies in force as stored, and each repository its quota', async () => {
      const { app, registry, usage, policies } = await setup(open);
      const prefix = `usage-${randomBytes(4).toString('hex')}`;
      const written = policy(`${prefix}/*`, { quotaBytes: 1_000_000, keepLast: 3 });
      await policies.putPolicy(written);
      await pushImage(app, `${prefix}/app`, ['v1'], randomBlob(10), [randomBlob(10)]);
      if (usage.summaries) await registry.usage!.compute();
      const report = (await call(app, 'GET', '/v2/_ocireg/usage')).json() as UsageReport;
      expect(report.policies).toContainEqual(written);
      expect(report.repositories.find((repository) => repository.name === `${prefix}/app`)).toMatchObject({ quotaBytes: 1_000_000, policy: `${prefix}/*` });
    });

    it('refuses a chunked upload that would exceed the quota with 403 DENIED naming the rule and the numbers, and keeps nothing of it', async () => {
      // Prepare: 10,000 bytes allowed, 6,000 stored.
      const { app, metadata, policies, failures } = await setup(open);
      const name = `quota-${randomBytes(4).toString('hex')}/app`;
      await policies.putPolicy(policy(name, { quotaBytes: 10_000 }));
      const [config, first, second] = [randomBlob(1000), randomBlob(5000), randomBlob(4001)];
      const manifest = await pushImage(app, name, ['v1'], config!, [first!]);
      // Act
      const refused = await chunkedUpload(app, name, second!);
      // Assess
      const error = deniedError(refused);
      expect(error.message).toBe(
        `quota exceeded: ${name} holds 6000 bytes and blob ${second!.digest} adds 4001, which would make 10001 bytes, over the quota of 10000 bytes (policy ${name}). ` +
          'Delete images and run ocireg gc, or raise the quota with ocireg policy set',
      );
      expect(error.detail).toMatchObject({ policy: name, quotaBytes: 10_000, storedBytes: 6000, blobBytes: 4001 });
      expect((await call(app, 'HEAD', `/v2/${name}/blobs/${second!.digest}`)).status).toBe(404);
      expect(await metadata.getBlob(second!.digest)).toBeUndefined();
      // A blob that fits exactly still goes in, and a manifest push that links nothing new passes at the limit.
      const fits = randomBlob(4000);
      expect((await chunkedUpload(app, name, fits)).status).toBe(201);
      expect((await call(app, 'PUT', `/v2/${name}/manifests/v2`, { body: manifest.bytes, headers: { 'content-type': manifest.mediaType } })).status).toBe(201);
      // Pushing a blob the repository already holds adds nothing.
      expect((await monolithicUpload(app, name, first!)).status).toBe(201);
      expect(failures).toEqual([]);
    });

    it('refuses a monolithic upload and a cross-repository mount over the quota; other repositories are unaffected', async () => {
      const { app, metadata, policies } = await setup(open);
      const prefix = `quota-${randomBytes(4).toString('hex')}`;
      await policies.putPolicy(policy(`${prefix}/small`, { quotaBytes: 3000 }));
      const big = randomBlob(2500);
      expect((await monolithicUpload(app, `${prefix}/other`, big)).status).toBe(201);
      expect((await monolithicUpload(app, `${prefix}/small`, randomBlob(1000))).status).toBe(201);
      // Act
      const whole = randomBlob(2001);
      const monolithic = await monolithicUpload(app, `${prefix}/small`, whole);
      const mounted = await call(app, 'POST', `/v2/${prefix}/small/blobs/uploads/?mount=${big.digest}&from=${prefix}/other`);
      // Assess
      expect(deniedError(monolithic).detail).toMatchObject({ policy: `${prefix}/small`, storedBytes: 1000, blobBytes: 2001 });
      expect(await metadata.getBlob(whole.digest)).toBeUndefined();
      expect(deniedError(mounted).detail).toMatchObject({ storedBytes: 1000, blobBytes: 2500 });
      expect((await call(app, 'HEAD', `/v2/${prefix}/small/blobs/${big.digest}`)).status).toBe(404);
      expect((await monolithicUpload(app, `${prefix}/other`, randomBlob(5000))).status).toBe(201);
    });

    it('admits concurrent uploads to one repository only up to the quota (one process)', async () => {
      const { app, policies } = await setup(open);
      const name = `quota-${randomBytes(4).toString('hex')}/app`;
      await policies.putPolicy(policy(name, { quotaBytes: 10_000 }));
      const blobs = Array.from({ length: 6 }, () => randomBlob(3000));
      // Act
      const results = await Promise.all(blobs.map((blob) => chunkedUpload(app, name, blob)));
      // Assess: 3 × 3000 fit in 10,000, a fourth does not, whichever order they finish in.
      expect(results.map((result) => result.status).sort()).toEqual([201, 201, 201, 403, 403, 403]);
    });
  });
}

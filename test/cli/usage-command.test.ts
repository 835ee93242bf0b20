import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRegistryApp } from '../../lib/http/app.ts';
import type { HttpHandler } from '../../lib/http/types.ts';
import { PolicyCache } from '../../lib/registry/policy-cache.ts';
import { Registry } from '../../lib/registry/registry.ts';
import type { UsageReport } from '../../lib/registry/usage.ts';
import { DynamoDbMetadataStore } from '../../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { DynamoDbPolicyStore } from '../../lib/storage/dynamodb/dynamodb-policy-store.ts';
import { DynamoDbUsageStore } from '../../lib/storage/dynamodb/dynamodb-usage-store.ts';
import { FsPolicyStore } from '../../lib/storage/fs/fs-policy-store.ts';
import { FsUsageStore } from '../../lib/storage/fs/fs-usage-store.ts';
import { openFsStorage } from '../../lib/storage/fs/open-fs-storage.ts';
import { S3BlobStore } from '../../lib/storage/s3/s3-blob-store.ts';
import { S3ManifestBodyStore } from '../../lib/storage/s3/s3-manifest-body-store.ts';
import { call } from '../support/app-client.ts';
import { awsAdminEnv } from '../support/aws-admin-env.ts';
import { imageManifest, randomBlob, type Blob } from '../support/builders.ts';
import { useLocalBackends } from '../support/local-backends.ts';
import { OCIREG_CLI } from '../support/registry-server.ts';
import { runTool } from '../support/tools.ts';

/** `ocireg usage` as an administrator types it, on a data dir and on a table (DynamoDB Local + s3rver). */

const local = useLocalBackends('usage-cli');
const awsEnv = () => awsAdminEnv(local.aws.endpoints.dynamo);

async function fsApp(): Promise<HttpHandler> {
  const storage = await openFsStorage(join(local.dir, 'data'));
  const registry = new Registry({ ...storage, policies: new PolicyCache(new FsPolicyStore(storage.keys), 0), usage: new FsUsageStore(storage.keys) });
  return createRegistryApp({ registry });
}

async function awsApp(): Promise<HttpHandler> {
  const { dynamo, s3 } = local.aws;
  const { table, bucket } = local.names;
  const registry = new Registry({
    blobs: new S3BlobStore({ s3, bucket }),
    metadata: new DynamoDbMetadataStore({ dynamo, table, bodies: new S3ManifestBodyStore({ s3, bucket }) }),
    policies: new PolicyCache(new DynamoDbPolicyStore({ dynamo, table }), 0),
    usage: new DynamoDbUsageStore({ dynamo, table }),
    pricePerGbMonthUsd: 0.023,
  });
  return createRegistryApp({ registry });
}

async function push(app: HttpHandler, name: string, tag: string, blobs: Blob[]): Promise<void> {
  for (const blob of blobs) {
    if ((await call(app, 'HEAD', `/v2/${name}/blobs/${blob.digest}`)).status === 200) continue;
    expect((await call(app, 'POST', `/v2/${name}/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes })).status).toBe(201);
  }
  const manifest = imageManifest(blobs[0]!, blobs.slice(1));
  expect((await call(app, 'PUT', `/v2/${name}/manifests/${tag}`, { body: manifest.bytes, headers: { 'content-type': manifest.mediaType } })).status).toBe(201);
}

const backends = {
  'fs (--data-dir)': { app: fsApp, args: () => ['--data-dir', join(local.dir, 'data')], env: () => process.env },
  'DynamoDB (--table)': { app: awsApp, args: () => ['--table', local.names.table], env: awsEnv },
};

for (const [backend, { app: makeApp, args, env }] of Object.entries(backends)) {
  describe(`ocireg usage on ${backend}`, () => {
    it('prints each repository with its unique and shared bytes, and the total counting shared blobs once', async () => {
      // Prepare
      const app = await makeApp();
      const shared = randomBlob(4096);
      await push(app, 'cli/a', 'v1', [randomBlob(100), shared, randomBlob(1000)]);
      await push(app, 'cli/b', 'v1', [randomBlob(200), shared]);
      expect((await runTool(process.execPath, [OCIREG_CLI, 'policy', 'set', 'cli/*', '--quota', '1MiB', ...args()], { env: env() })).code).toBe(0);
      // Act
      const json = await runTool(process.execPath, [OCIREG_CLI, 'usage', '--json', ...args()], { env: env() });
      const text = await runTool(process.execPath, [OCIREG_CLI, 'usage', ...args()], { env: env() });
      // Assess
      expect(json.code, json.stderr).toBe(0);
      const report = JSON.parse(json.stdout) as UsageReport;
      expect(report.repositories).toEqual([
        expect.objectContaining({ name: 'cli/a', storedBytes: 5196, uniqueBytes: 1100, sharedBytes: 4096, tags: 1, manifests: 1, quotaBytes: 2 ** 20, policy: 'cli/*' }),
        expect.objectContaining({ name: 'cli/b', storedBytes: 4296, uniqueBytes: 200, sharedBytes: 4096, tags: 1, manifests: 1 }),
      ]);
      expect(report.totalBytes).toBe(1100 + 200 + 4096);
      expect(report.policies).toEqual([expect.objectContaining({ glob: 'cli/*', quotaBytes: 2 ** 20 })]);
      expect(json.stderr).toMatch(/computed over 2 repositories in \d+ ms/);
      expect(text.code, text.stderr).toBe(0);
      const lines = text.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^REPOSITORY\s+STORED\s+UNIQUE\s+SHARED\s+TAGS\s+MANIFESTS\s+LAST PUSH\s+LAST PULL\s+QUOTA$/);
      expect(lines[1]).toMatch(/^cli\/a\s+5.07KiB\s+1.07KiB\s+4KiB\s+1\s+1\s+/);
      expect(lines[1]).toMatch(/1MiB \(0%\)$/);
      if (backend.startsWith('DynamoDB')) {
        expect(lines.at(-1)).toBe('total 5.27KiB in 2 repositories (each blob counted once); about $0.00 a month at $0.023/GB-month');
        // The summary the command stored is what the HTTP API now serves.
        const served = (await call(app, 'GET', '/v2/_ocireg/usage')).json() as UsageReport;
        expect(served.repositories.map((repository) => repository.name)).toEqual(['cli/a', 'cli/b']);
        expect(served.totalBytes).toBe(report.totalBytes);
        expect(served.estimatedMonthlyCostUsd).toBe(0);
      } else {
        expect(lines.at(-1)).toBe('total 5.27KiB in 2 repositories (each blob counted once)');
      }
    });

    it('refuses a price that is not one with exit 2', async () => {
      const refused = await runTool(process.execPath, [OCIREG_CLI, 'usage', '--price-per-gb-month', 'cheap', ...args()], { env: env() });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('--price-per-gb-month is a price in USD, 0 or more, like 0.023, got "cheap"');
    });
  });
}

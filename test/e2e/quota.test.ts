import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevAws, type DevAws } from '../../bin/dev-aws.ts';
import type { UsageReport } from '../../lib/registry/usage.ts';
import { awsAdminEnv } from '../support/aws-admin-env.ts';
import { addRandomLayer, buildRandomImage, type LayoutImage } from '../support/images.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { requireTools, runOk, runTool } from '../support/tools.ts';

/**
 * Quotas and usage met by a real client (skopeo) on both deployments: `ocireg serve` on a data dir, and the
 * production Lambda handler behind the emulated HTTP API over DynamoDB Local and s3rver. The administrator sets the
 * quota and reads usage with the CLI; skopeo prints the refusal.
 */

const KiB = 1024;
let work: string;
let base: LayoutImage;
let bigger: LayoutImage;

beforeAll(async () => {
  await requireTools('skopeo', 'umoci');
  work = await mkdtemp(join(tmpdir(), 'ocireg-quota-e2e-'));
  const layout = join(work, 'layout');
  // base: one 200 KiB layer; bigger: base plus another 200 KiB layer (it shares base's layer).
  base = await buildRandomImage({ layout, tag: 'base', randomBytes: 200 * KiB });
  bigger = await addRandomLayer(layout, 'base', 200 * KiB, 'bigger');
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const bytesOf = (image: LayoutImage) => image.blobs.reduce((total, blob) => total + blob.size, 0);

/** The same story on each deployment: fill up to the quota, be refused, re-tag freely, read the figures. */
async function quotaStory(host: string, admin: (args: string[]) => ReturnType<typeof runTool>) {
  const repository = `team/quota-${Date.now().toString(36)}`;
  expect((await admin(['policy', 'set', 'team/*', '--quota', '300KiB'])).code).toBe(0);
  const copy = (image: LayoutImage, tag: string) => runTool('skopeo', ['copy', '--dest-tls-verify=false', image.ref, `docker://${host}/${repository}:${tag}`]);
  // Act
  const first = await copy(base, 'v1');
  const refused = await copy(bigger, 'v2');
  const retagged = await copy(base, 'v3');
  // Assess
  expect(first.code, first.stderr).toBe(0);
  expect(refused.code).not.toBe(0);
  const added = bigger.blobs.find((blob) => blob.mediaType.includes('layer') && !base.blobs.some((held) => held.digest === blob.digest))!;
  expect(refused.stderr).toContain(`quota exceeded: ${repository} holds`);
  expect(refused.stderr).toContain(`blob ${added.digest} adds ${added.size}`);
  expect(refused.stderr).toContain(`over the quota of ${300 * KiB} bytes (policy team/*)`);
  expect(retagged.code, retagged.stderr).toBe(0);
  const cli = await admin(['usage', '--json']);
  expect(cli.code, cli.stderr).toBe(0);
  const report = JSON.parse(cli.stdout) as UsageReport;
  const line = report.repositories.find((found) => found.name === repository);
  // base's blobs, and whichever of bigger's blobs came in before its layer was refused (its config, if new).
  expect(line?.storedBytes).toBeGreaterThanOrEqual(bytesOf(base));
  expect(line?.storedBytes).toBeLessThanOrEqual(300 * KiB);
  expect(line).toMatchObject({ tags: 2, manifests: 1, quotaBytes: 300 * KiB, policy: 'team/*' });
  const served = (await (await fetch(`http://${host}/v2/_ocireg/usage`)).json()) as UsageReport;
  expect(served.repositories.find((found) => found.name === repository)).toEqual(line);
  return served;
}

describe('quota and usage with skopeo on ocireg serve', () => {
  let server: RegistryServer;
  afterAll(async () => {
    await server?.stop();
  });

  it('refuses the layer that would exceed the quota, accepts re-tagging, and reports the figures', async () => {
    server = await startRegistryServer();
    const served = await quotaStory(server.host, (args) => runTool(process.execPath, [OCIREG_CLI, ...args, '--data-dir', server.dataDir]));
    expect(served).not.toHaveProperty('estimatedMonthlyCostUsd');
  }, 120_000);
});

describe('quota and usage with skopeo on the emulated AWS deployment', () => {
  let dev: DevAws;
  afterAll(async () => {
    await dev?.stop();
  });

  it('refuses the layer that would exceed the quota, accepts re-tagging, and serves the summary ocireg usage stored', async () => {
    dev = await startDevAws({ logLevel: 'WARN' });
    const env = awsAdminEnv(dev.endpoints.dynamo);
    const admin = (args: string[]) => runTool(process.execPath, [OCIREG_CLI, ...args, '--table', dev.names.table], { env });
    const host = new URL(dev.url).host;
    // The function caches the policy list for 5 s, and the GET below reads it: set the quota first, so the push that
    // follows within those seconds meets it (quotaStory sets the same policy again).
    expect((await admin(['policy', 'set', 'team/*', '--quota', '300KiB'])).code).toBe(0);
    // No summary yet: the HTTP API does not scan the table, it says so.
    const before = (await (await fetch(`${dev.url}/v2/_ocireg/usage`)).json()) as UsageReport;
    expect(before).toMatchObject({ computedAt: null, repositories: [], totalBytes: 0, pricePerGbMonthUsd: 0.023 });
    const served = await quotaStory(host, admin);
    expect(served.pricePerGbMonthUsd).toBe(0.023);
    expect(served.estimatedMonthlyCostUsd).toBeGreaterThanOrEqual(0);
    await runOk(process.execPath, [OCIREG_CLI, 'policy', 'rm', 'team/*', '--table', dev.names.table], { env });
  }, 240_000);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevAws, type DevAws } from '../../bin/dev-aws.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../lib/dev/aws-local.ts';
import { formatRemoval } from '../../lib/cli/gc-output.ts';
import type { GcRemoval, GcReport } from '../../lib/registry/gc/gc-report.ts';
import { image, type TestImage } from '../registry/gc.contract.ts';
import { randomBlob } from '../support/builders.ts';
import { OCIREG_CLI } from '../support/registry-server.ts';
import { runTool } from '../support/tools.ts';
import { startEventBridgeRecorder, type EventBridgeRecorder } from '../support/event-bridge-recorder.ts';

/**
 * `ocireg gc --table/--bucket` as an administrator runs it against a deployed registry, here dev:aws (the
 * production handler behind the emulated HTTP API, DynamoDB Local, s3rver): over HTTP pushes, while pushes go on.
 */
let dev: DevAws;
let bus: EventBridgeRecorder;
beforeAll(async () => {
  dev = await startDevAws({ logLevel: 'SILENT' });
  bus = await startEventBridgeRecorder();
}, 120_000);
afterAll(async () => {
  await bus?.close();
  await dev?.stop();
});

/** This machine runs both the function and the CLI: one clock, no tolerance needed. */
function ocireg(...args: string[]) {
  return runTool(process.execPath, [OCIREG_CLI, 'gc', '--table', dev.names.table, '--bucket', dev.names.bucket, '--clock-tolerance', '0s', ...args], {
    env: {
      AWS_ENDPOINT_URL_DYNAMODB: dev.endpoints.dynamo,
      AWS_ENDPOINT_URL_S3: dev.endpoints.s3,
      AWS_ENDPOINT_URL_EVENTBRIDGE: bus.endpoint,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_REGION: LOCAL_REGION,
    },
  });
}

async function gcJson(...args: string[]): Promise<GcReport> {
  const result = await ocireg('--json', ...args);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as GcReport;
}

/**
 * A push over HTTP as oras does it: each blob in one POST, then the manifest PUT. A client pushes again when a run
 * doomed what it needed: the manifest on MANIFEST_BLOB_UNKNOWN, a blob on BLOB_UPLOAD_INVALID (its record was being
 * collected: lib/registry/gc/collector.ts, the record timeline).
 */
async function pushOverHttp(pushed: TestImage, tag: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    let refused = '';
    for (const blob of pushed.blobs) {
      const response = await fetch(`${dev.url}/v2/${pushed.name}/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', body: new Uint8Array(blob.bytes), headers: { 'content-type': 'application/octet-stream' } });
      if (response.status !== 201) refused = `POST blob: ${response.status} ${await response.text()}`;
    }
    if (refused !== '') {
      if (!refused.includes('BLOB_UPLOAD_INVALID') || attempt >= 5) throw new Error(refused);
      continue;
    }
    const response = await fetch(`${dev.url}/v2/${pushed.name}/manifests/${tag}`, { method: 'PUT', body: new Uint8Array(pushed.manifest.bytes), headers: { 'content-type': pushed.manifest.mediaType } });
    if (response.status === 201) return;
    const text = await response.text();
    if (!text.includes('MANIFEST_BLOB_UNKNOWN') || attempt >= 5) throw new Error(`PUT manifest: ${response.status} ${text}`);
  }
}

/** Pulls by tag over HTTP (blobs through the 307 to s3rver) and compares every byte. */
async function expectPullsOverHttp(pulled: TestImage, tag: string): Promise<void> {
  const manifest = await fetch(`${dev.url}/v2/${pulled.name}/manifests/${tag}`, { headers: { accept: pulled.manifest.mediaType } });
  expect(manifest.status).toBe(200);
  expect(Buffer.from(await manifest.arrayBuffer()).equals(pulled.manifest.bytes)).toBe(true);
  for (const blob of pulled.blobs) {
    const response = await fetch(`${dev.url}/v2/${pulled.name}/blobs/${blob.digest}`);
    expect(response.status, `${pulled.name} ${blob.digest}`).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(blob.bytes)).toBe(true);
  }
}

/** The removals of `pushed`'s blobs, in a fixed order (a run removes 16 at a time: its report is in completion order). */
const mine = (removals: GcRemoval[], pushed: TestImage) =>
  removals.filter((removal) => 'digest' in removal && pushed.blobs.some((blob) => blob.digest === removal.digest)).map(formatRemoval).sort();

describe('ocireg gc --table --bucket (dev:aws)', () => {
  it("removes a deleted image's blobs, bytes included, lists the same in a dry run, and the other image pulls intact", async () => {
    // Prepare
    const [gone, kept] = [image('cli-gc/gone'), image('cli-gc/kept')];
    await pushOverHttp(gone, 'v1');
    await pushOverHttp(kept, 'v1');
    expect((await fetch(`${dev.url}/v2/${gone.name}/manifests/${gone.manifest.digest}`, { method: 'DELETE' })).status).toBe(202);
    // Act
    const dry = await gcJson('--grace', '0s', '--dry-run');
    const real = await gcJson('--grace', '0s');
    const text = await ocireg('--grace', '0s');
    // Assess
    expect(mine(dry.removals, gone)).toHaveLength(4);
    expect(mine(real.removals, gone)).toEqual(mine(dry.removals, gone));
    expect(mine(real.removals, kept)).toEqual([]);
    expect(text.stdout).toMatch(/^freed \d+ bytes .* in \d+ removals$/m);
    expect((await fetch(`${dev.url}/v2/cli-gc/other/blobs/${gone.blobs[1]!.digest}`, { method: 'HEAD' })).status).toBe(404);
    await expectPullsOverHttp(kept, 'v1');
  });

  it('loses nothing of 16 pushes that go through the API while it runs (each as a client retries a refused step)', async () => {
    // Prepare: garbage whose layers the pushes reuse
    const base = randomBlob(4096);
    const garbage = Array.from({ length: 4 }, (_, index) => image(`cli-busy/old-${index}`));
    for (const old of garbage) {
      await pushOverHttp(old, 'v1');
      await fetch(`${dev.url}/v2/${old.name}/manifests/${old.manifest.digest}`, { method: 'DELETE' });
    }
    const pushes = Array.from({ length: 16 }, (_, index) => image(`cli-busy/app-${index % 4}`, [base, garbage[index % 4]!.blobs[1]!, randomBlob(1024)]));
    // Act
    const [run] = await Promise.all([gcJson('--grace', '0s'), ...pushes.map((pushed, index) => pushOverHttp(pushed, `v${index}`))]);
    const again = await gcJson('--grace', '0s');
    // Assess
    expect(run.complete && again.complete).toBe(true);
    for (const [index, pushed] of pushes.entries()) await expectPullsOverHttp(pushed, `v${index}`);
  });

  it('sends one GC event per removal to --event-bus, as the scheduled function does, and none in a dry run', async () => {
    // Prepare
    const gone = image('cli-events/gone');
    await pushOverHttp(gone, 'v1');
    expect((await fetch(`${dev.url}/v2/${gone.name}/manifests/${gone.manifest.digest}`, { method: 'DELETE' })).status).toBe(202);
    bus.recorded.length = 0;
    // Act
    const dry = await gcJson('--grace', '0s', '--dry-run', '--event-bus', 'ocireg-bus');
    const sentInDryRun = bus.recorded.length;
    const real = await gcJson('--grace', '0s', '--event-bus', 'ocireg-bus');
    // Assess: one PutEvents of one entry for each link of the image (blob records belong to no repository)
    expect(mine(dry.removals, gone).length).toBeGreaterThan(0);
    expect(sentInDryRun).toBe(0);
    const links = real.removals.filter((removal) => removal.kind === 'link' || removal.kind === 'manifest');
    expect(bus.recorded.map((request) => [request.target, request.body.Entries.length])).toEqual(links.map(() => ['AWSEvents.PutEvents', 1]));
    const details: Array<Record<string, string>> = bus.recorded.map((request) => ({ ...(JSON.parse(request.body.Entries[0]!.Detail) as Record<string, string>), bus: request.body.Entries[0]!.EventBusName }));
    expect(details.filter((detail) => detail['repository-name'] === gone.name).map((detail) => detail['image-digest']).sort()).toEqual(gone.blobs.map((blob) => blob.digest).sort());
    for (const detail of details) expect(detail).toMatchObject({ bus: 'ocireg-bus', 'action-type': 'GC', result: 'SUCCESS' });
  });

  it('asks for the bucket with --table, naming it', async () => {
    const result = await runTool(process.execPath, [OCIREG_CLI, 'gc', '--table', 'some-table']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('give --bucket <name> with --table some-table');
  });
});

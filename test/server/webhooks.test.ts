import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../lib/client/registry-client.ts';
import type { RegistryEvent } from '../../lib/registry/events.ts';
import { MediaType } from '../../lib/registry/manifest.ts';
import { serve, type RunningServer, type ServeOptions } from '../../lib/server/serve.ts';
import { runLocalGc } from '../../lib/cli/gc-command.ts';
import { webhookSignature, type WebhookTarget } from '../../lib/server/webhook-sink.ts';
import { artifactManifest, EMPTY_CONFIG, imageManifest, randomBlob } from '../support/builders.ts';
import { freePort } from '../support/registry-server.ts';
import { waitFor } from '../support/tools.ts';

interface Received {
  headers: Record<string, string | string[] | undefined>;
  raw: string;
  event: RegistryEvent;
}

/** A webhook receiver on loopback that keeps what it gets; `respond` decides the status. */
async function startReceiver(port = 0, respond: () => number = () => 204) {
  const received: Received[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      received.push({ headers: request.headers, raw, event: JSON.parse(raw) as RegistryEvent });
      response.writeHead(respond()).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}/hook`, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function startServe(webhooks: WebhookTarget[], options: Partial<ServeOptions> = {}): Promise<RunningServer & { host: string; dataDir: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ocireg-webhooks-'));
  const running = await serve({ host: '127.0.0.1', port: 0, dataDir, webhooks, writeLog: () => undefined, ...options });
  cleanups.push(async () => {
    running.server.closeAllConnections();
    await running.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  return { ...running, host: new URL(running.url).host, dataDir };
}

async function pushImage(host: string, repository: string, tag: string): Promise<string> {
  return (await pushImageWithBlobs(host, repository, tag)).digest;
}

async function pushImageWithBlobs(host: string, repository: string, tag: string) {
  const client = new RegistryClient({ registry: host, plainHttp: true });
  const [config, layer] = [randomBlob(32), randomBlob(512)];
  for (const blob of [config, layer]) await client.request('POST', `/v2/${repository}/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes, expect: [201] });
  const manifest = imageManifest(config, [layer]);
  await client.request('PUT', `/v2/${repository}/manifests/${tag}`, { body: manifest.bytes, headers: { 'content-type': MediaType.ociManifest }, expect: [201] });
  return { digest: manifest.digest, manifest, blobs: [config.digest, layer.digest] };
}

/**
 * An image, a signature-like referrer of it, then the image deleted by digest: garbage collection then removes the
 * referrer (its subject is gone) and the image's blob links. Returns what it removes, by kind.
 */
async function leaveGarbage(host: string, repository: string) {
  const client = new RegistryClient({ registry: host, plainHttp: true });
  const image = await pushImageWithBlobs(host, repository, 'doomed');
  const referrer = artifactManifest(image.manifest, 'application/vnd.example.signature');
  await client.request('POST', `/v2/${repository}/blobs/uploads/?digest=${EMPTY_CONFIG.digest}`, { body: EMPTY_CONFIG.bytes, expect: [201] });
  await client.request('PUT', `/v2/${repository}/manifests/${referrer.digest}`, { body: referrer.bytes, headers: { 'content-type': referrer.mediaType }, expect: [201] });
  await client.request('DELETE', `/v2/${repository}/manifests/${image.digest}`, { expect: [202] });
  return { referrer: referrer.digest, links: [...image.blobs, EMPTY_CONFIG.digest] };
}

describe('ocireg serve --webhook', () => {
  it('POSTs signed push, tag-move and delete events in the documented shape', async () => {
    // Prepare
    const receiver = await startReceiver();
    cleanups.push(receiver.close);
    const registry = await startServe([{ url: receiver.url, secret: 's3cret' }]);
    // Act
    const first = await pushImage(registry.host, 'team/hooked', 'v1');
    const second = await pushImage(registry.host, 'team/hooked', 'v1');
    const client = new RegistryClient({ registry: registry.host, plainHttp: true });
    await client.request('POST', '/v2/team/hooked/_ocireg/rollback/v1', { body: Buffer.from('{}'), headers: { 'content-type': 'application/json' } });
    await client.request('DELETE', '/v2/team/hooked/manifests/v1', { expect: [202] });
    // Assess
    await waitFor(async () => receiver.received.length >= 4, 'four webhook deliveries', 10_000);
    const byAction = (action: string) => receiver.received.filter((delivery) => delivery.event.detail['action-type'] === action);
    for (const delivery of receiver.received) {
      expect(delivery.headers['x-ocireg-signature-256']).toBe(webhookSignature('s3cret', delivery.raw));
      expect(delivery.event).toMatchObject({ version: '0', source: 'ocireg', 'detail-type': 'Ocireg Image Action', detail: { result: 'SUCCESS', 'repository-name': 'team/hooked' } });
    }
    expect(byAction('PUSH').map((delivery) => delivery.event.detail['image-digest']).sort()).toEqual([first, second].sort());
    expect(byAction('PUSH').find((delivery) => delivery.event.detail['image-digest'] === second)!.event.detail).toMatchObject({ 'image-tag': 'v1', 'previous-digest': first });
    expect(byAction('TAG')[0]!.event.detail).toMatchObject({ 'image-digest': first, 'previous-digest': second, 'image-tags': ['v1'] });
    expect(byAction('DELETE')[0]!.event.detail).toMatchObject({ 'image-digest': first, 'image-tag': 'v1', 'artifact-type': 'tag' });
  });

  it('keeps retrying while the receiver is down, and delivers once it is up; filters by kind', async () => {
    // Prepare: a port nobody listens on yet
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/hook`;
    const registry = await startServe([{ url, secret: 'k', events: ['PUSH'] }]);
    // Act: the push answers while the receiver is down
    const started = Date.now();
    const digest = await pushImage(registry.host, 'team/later', 'v1');
    expect(Date.now() - started).toBeLessThan(5_000);
    await new Promise((resolve) => setTimeout(resolve, 600));
    let failuresLeft = 1;
    const receiver = await startReceiver(port, () => (failuresLeft-- > 0 ? 503 : 200));
    cleanups.push(receiver.close);
    await new RegistryClient({ registry: registry.host, plainHttp: true }).request('DELETE', '/v2/team/later/manifests/v1', { expect: [202] });
    // Assess: one 503, then the delivery; the DELETE is filtered out
    await waitFor(async () => receiver.received.length >= 2, 'the retried delivery', 15_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.received.map((delivery) => delivery.event.detail['action-type'])).toEqual(['PUSH', 'PUSH']);
    expect(receiver.received[1]!.event.detail['image-digest']).toBe(digest);
    expect(receiver.received[1]!.headers['x-ocireg-delivery']).toBe(receiver.received[0]!.event.id);
    expect(receiver.received[1]!.headers['x-ocireg-signature-256']).toBe(webhookSignature('k', receiver.received[1]!.raw));
  });

  it('POSTs a signed GC event for each manifest and blob link `ocireg gc` removes (through the control socket), none for a dry run', async () => {
    // Prepare
    const receiver = await startReceiver();
    cleanups.push(receiver.close);
    const registry = await startServe([{ url: receiver.url, secret: 'gc-secret', events: ['GC'] }]);
    const garbage = await leaveGarbage(registry.host, 'team/collected');
    // Act: what `ocireg gc --data-dir` does while serve owns the data dir
    const dry = await runLocalGc(registry.dataDir, { dryRun: true, graceMs: 0 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const deliveredAfterDryRun = receiver.received.length;
    const report = await runLocalGc(registry.dataDir, { dryRun: false, graceMs: 0 });
    // Assess
    expect(dry.removals.length).toBeGreaterThan(0);
    expect(deliveredAfterDryRun).toBe(0);
    const links = report.removals.filter((removal) => removal.kind === 'link');
    expect(links.map((removal) => removal.digest).sort()).toEqual([...new Set(garbage.links)].sort());
    await waitFor(async () => receiver.received.length >= links.length + 1, 'one GC event per removed manifest and link', 10_000);
    for (const delivery of receiver.received) {
      expect(delivery.headers['x-ocireg-signature-256']).toBe(webhookSignature('gc-secret', delivery.raw));
      expect(delivery.headers['x-ocireg-event']).toBe('GC');
    }
    const details = receiver.received.map((delivery) => delivery.event.detail);
    expect(details.filter((detail) => detail['artifact-type'] === 'manifest')).toEqual([
      { 'action-type': 'GC', result: 'SUCCESS', 'repository-name': 'team/collected', 'image-digest': garbage.referrer, 'artifact-type': 'manifest', reason: 'referrer of a deleted subject' },
    ]);
    expect(details.filter((detail) => detail['artifact-type'] === 'blob').map((detail) => [detail['repository-name'], detail['image-digest']]).sort()).toEqual(
      [...new Set(garbage.links)].map((digest) => ['team/collected', digest]).sort(),
    );
  });

  it('POSTs GC events for the runs of `serve --gc-every`', async () => {
    // Prepare
    const receiver = await startReceiver();
    cleanups.push(receiver.close);
    const registry = await startServe([{ url: receiver.url, secret: 'every' }], { gcEveryMs: 200, gcGraceMs: 0 });
    // Act
    const garbage = await leaveGarbage(registry.host, 'team/periodic');
    // Assess
    await waitFor(async () => receiver.received.some((delivery) => delivery.event.detail['action-type'] === 'GC' && delivery.event.detail['artifact-type'] === 'manifest'), 'the periodic run’s GC event', 15_000);
    const gc = receiver.received.find((delivery) => delivery.event.detail['action-type'] === 'GC' && delivery.event.detail['artifact-type'] === 'manifest')!;
    expect(gc.event.detail['image-digest']).toBe(garbage.referrer);
    expect(gc.headers['x-ocireg-signature-256']).toBe(webhookSignature('every', gc.raw));
  });
});

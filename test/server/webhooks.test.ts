import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../lib/client/registry-client.ts';
import type { RegistryEvent } from '../../lib/registry/events.ts';
import { MediaType } from '../../lib/registry/manifest.ts';
import { serve, type RunningServer } from '../../lib/server/serve.ts';
import { webhookSignature, type WebhookTarget } from '../../lib/server/webhook-sink.ts';
import { imageManifest, randomBlob } from '../support/builders.ts';
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

async function startServe(webhooks: WebhookTarget[]): Promise<RunningServer & { host: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ocireg-webhooks-'));
  const running = await serve({ host: '127.0.0.1', port: 0, dataDir, webhooks, writeLog: () => undefined });
  cleanups.push(async () => {
    running.server.closeAllConnections();
    await running.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  return { ...running, host: new URL(running.url).host };
}

async function pushImage(host: string, repository: string, tag: string): Promise<string> {
  const client = new RegistryClient({ registry: host, plainHttp: true });
  const [config, layer] = [randomBlob(32), randomBlob(512)];
  for (const blob of [config, layer]) await client.request('POST', `/v2/${repository}/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes, expect: [201] });
  const manifest = imageManifest(config, [layer]);
  await client.request('PUT', `/v2/${repository}/manifests/${tag}`, { body: manifest.bytes, headers: { 'content-type': MediaType.ociManifest }, expect: [201] });
  return manifest.digest;
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
});

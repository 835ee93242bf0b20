import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Credentials } from '../../lib/client/docker-credentials.ts';
import { RegistryClient } from '../../lib/client/registry-client.ts';
import { MediaType } from '../../lib/registry/manifest.ts';
import { imageManifest, randomBlob } from '../support/builders.ts';
import { devAwsCommand, OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { runOk, runTool } from '../support/tools.ts';

/**
 * `ocireg history | rollback | tag | ls` against real servers: `ocireg serve` with and without `--auth`, and the
 * emulated AWS deployment (production handler, DynamoDB Local, s3rver). Images are pushed with the CLI's own
 * registry client (docker's token flow); the commands read docker credentials from a private DOCKER_CONFIG.
 */

let home: string;
const servers: RegistryServer[] = [];
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'ocireg-versions-cli-'));
});
afterAll(async () => {
  await Promise.allSettled(servers.map((server) => server.stop()));
  await rm(home, { recursive: true, force: true });
});

async function pushImage(host: string, repository: string, tag: string, credentials?: Credentials): Promise<string> {
  const client = new RegistryClient({ registry: host, plainHttp: true, credentials, scopes: [`repository:${repository}:pull,push`] });
  const [config, layer] = [randomBlob(64), randomBlob(2048)];
  for (const blob of [config, layer]) {
    await client.request('POST', `/v2/${repository}/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes, headers: { 'content-type': 'application/octet-stream' }, expect: [201] });
  }
  const manifest = imageManifest(config, [layer]);
  await client.request('PUT', `/v2/${repository}/manifests/${tag}`, { body: manifest.bytes, headers: { 'content-type': MediaType.ociManifest }, expect: [201] });
  return manifest.digest;
}

function ocireg(dockerConfig: string, ...args: string[]) {
  return runTool(process.execPath, [OCIREG_CLI, ...args], { env: { ...process.env, DOCKER_CONFIG: dockerConfig } });
}

/** The whole story on one server: push twice, look, promote, roll back, look again. */
async function versionStory(server: RegistryServer, dockerConfig: string, credentials?: Credentials): Promise<void> {
  const repo = `team/app-${Date.now().toString(36)}`;
  const ref = `${server.host}/${repo}`;
  const first = await pushImage(server.host, repo, 'v', credentials);
  const second = await pushImage(server.host, repo, 'v', credentials);

  const history = await ocireg(dockerConfig, 'history', `${ref}:v`, '--json');
  expect(history.code, history.stderr).toBe(0);
  const changes = JSON.parse(history.stdout) as Array<{ action: string; previous?: string; digest: string; actor: { subject: string }; userAgent: string }>;
  expect(changes.map((change) => [change.action, change.previous, change.digest])).toEqual([
    ['moved', first, second],
    ['created', undefined, first],
  ]);
  expect(changes[0]!.actor.subject).toBe(credentials ? credentials.username : 'anonymous');
  expect(changes[0]!.userAgent).toBe('ocireg-push');

  const promoted = await ocireg(dockerConfig, 'tag', `${ref}:v`, 'prod', 'stable');
  expect(promoted.code, promoted.stderr).toBe(0);
  expect(promoted.stdout).toContain(`${second} tagged prod, stable`);

  // prod was created by the promotion: one step back is before it existed, refused with the registry's error.
  const rolledBack = await ocireg(dockerConfig, 'rollback', `${ref}:prod`);
  expect(rolledBack.code).toBe(1);
  expect(rolledBack.stderr).toContain('no version 1 step(s) back');
  const vBack = await ocireg(dockerConfig, 'rollback', `${ref}:v`, '--json');
  expect(vBack.code, vBack.stderr).toBe(0);
  expect(JSON.parse(vBack.stdout)).toMatchObject({ previous: second, digest: first });
  const toDigest = await ocireg(dockerConfig, 'rollback', `${ref}:v`, '--to', second);
  expect(toDigest.stdout).toContain(`${first} -> ${second}`);

  // A pull by tag is recorded on the manifest: every tag pointing at it shows it (a HEAD is not a pull).
  const puller = new RegistryClient({ registry: server.host, plainHttp: true, credentials, scopes: [`repository:${repo}:pull`] });
  await puller.request('HEAD', `/v2/${repo}/manifests/v`, { headers: { accept: MediaType.ociManifest }, expect: [200] });
  // Nor is the web console's look at it: a browser's fetch carries Fetch Metadata headers.
  await puller.request('GET', `/v2/${repo}/manifests/v`, { headers: { accept: MediaType.ociManifest, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' }, expect: [200] });
  const beforePull = JSON.parse((await ocireg(dockerConfig, 'ls', ref, '--json')).stdout) as Array<{ lastPulledAt?: string }>;
  expect(beforePull.map((tag) => tag.lastPulledAt)).toEqual([undefined, undefined, undefined]);
  const pulledAround = Date.now();
  await puller.request('GET', `/v2/${repo}/manifests/prod`, { headers: { accept: MediaType.ociManifest }, expect: [200] });

  const listing = await ocireg(dockerConfig, 'ls', ref, '--json');
  expect(listing.code, listing.stderr).toBe(0);
  const tags = JSON.parse(listing.stdout) as Array<{ tag: string; digest: string; size: number; pushedAt: string; lastPulledAt?: string }>;
  expect(tags.map((tag) => [tag.tag, tag.digest])).toEqual([
    ['prod', second],
    ['stable', second],
    ['v', second],
  ]);
  expect(tags[0]!.size).toBeGreaterThan(2048 + 64);
  for (const tag of tags) expect(Math.abs(Date.parse(tag.lastPulledAt!) - pulledAround)).toBeLessThan(30_000);
  const table = await ocireg(dockerConfig, 'ls', ref);
  expect(table.stdout).toMatch(/^TAG\s+DIGEST\s+SIZE\s+PUSHED\s+LAST PULL/);
  expect(table.stdout).toContain(tags[0]!.lastPulledAt!.slice(0, 10));
  const repositories = await ocireg(dockerConfig, 'ls', server.host, '--json');
  expect(JSON.parse(repositories.stdout)).toContain(repo);
}

describe('version commands against ocireg serve', () => {
  it('history, tag, rollback and ls work without auth (plain HTTP chosen for 127.0.0.1)', async () => {
    const server = await startRegistryServer();
    servers.push(server);
    await versionStory(server, join(home, 'none'));
  }, 60_000);

  it('with --auth: docker credentials from DOCKER_CONFIG, the actor recorded, push refused to a pull-only user', async () => {
    // Prepare
    const server = await startRegistryServer({ serveArgs: ['--auth'] });
    servers.push(server);
    const admin = (...args: string[]) => runOk(process.execPath, [OCIREG_CLI, ...args, '--data-dir', server.dataDir]);
    await admin('users', 'add', 'alice');
    await admin('grants', 'set', 'alice', 'team/*', 'push');
    await admin('users', 'add', 'reader');
    await admin('grants', 'set', 'reader', 'team/*', 'pull');
    const aliceToken = (await admin('tokens', 'create', 'alice')).stdout.trim();
    const readerToken = (await admin('tokens', 'create', 'reader')).stdout.trim();
    const dockerConfig = join(home, 'alice');
    await runOk('mkdir', ['-p', dockerConfig]);
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [server.host]: { auth: Buffer.from(`alice:${aliceToken}`).toString('base64') } } }));
    // Act + Assess
    await versionStory(server, dockerConfig, { username: 'alice', password: aliceToken });
    const repo = 'team/readonly';
    await pushImage(server.host, repo, 'v', { username: 'alice', password: aliceToken });
    const readerHistory = await ocireg(join(home, 'none'), 'history', `${server.host}/${repo}:v`, '--creds', `reader:${readerToken}`);
    expect(readerHistory.code, readerHistory.stderr).toBe(0);
    const denied = await ocireg(join(home, 'none'), 'tag', `${server.host}/${repo}:v`, 'prod', '--creds', `reader:${readerToken}`);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/denied|unauthorized|insufficient/i);
    const anonymous = await ocireg(join(home, 'none'), 'history', `${server.host}/${repo}:v`);
    expect(anonymous.code).toBe(1);
  }, 90_000);
});

describe('version commands against the emulated AWS deployment', () => {
  it('history, tag, rollback and ls work over DynamoDB Local', async () => {
    const server = await startRegistryServer({ command: devAwsCommand(), readyTimeoutMs: 120_000 });
    servers.push(server);
    await versionStory(server, join(home, 'none'));
  }, 180_000);
});

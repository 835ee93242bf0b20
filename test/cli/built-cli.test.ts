import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCliOutsideRepository, type BuiltCli } from '../support/built-cli.ts';
import { sha256 } from '../support/digests.ts';
import { buildRandomImage, MANIFEST_ACCEPT, MiB } from '../support/images.ts';
import { startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { describeFailure, requireTools, runTool, type RunResult } from '../support/tools.ts';

/**
 * The installable CLI: `npm run build` makes one JavaScript file that runs on the machine's plain Node ≥ 20 from a
 * directory outside the repository, with no node_modules next to it. It serves, administers, logs in, pushes,
 * proxies and probes as the TypeScript sources do.
 */

let built: BuiltCli;
let server: RegistryServer;
let proxy: RegistryServer;
let dockerConfig: string;
let token: string;

const cli = (args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}) =>
  runTool(built.node, [built.cli, ...args], { cwd: built.dir, timeoutMs: 180_000, env: { DOCKER_CONFIG: dockerConfig, ...options.env }, ...(options.input !== undefined ? { input: options.input } : {}) });
const ok = (result: RunResult) => {
  expect(result.code, describeFailure(result)).toBe(0);
  return result;
};

beforeAll(async () => {
  await requireTools('umoci');
  built = await buildCliOutsideRepository();
  dockerConfig = join(built.dir, 'docker-config');
  // The registry itself runs from the bundle on the plain Node.
  server = await startRegistryServer({
    serveArgs: ['--auth'],
    command: ({ port, listenHost, dataDir }) => ({ command: built.node, args: [built.cli, 'serve', '--auth', '--port', String(port), '--host', listenHost, '--data-dir', dataDir] }),
  });
  ok(await cli(['users', 'add', 'alice', '--admin', '--data-dir', server.dataDir]));
  token = ok(await cli(['tokens', 'create', 'alice', '--data-dir', server.dataDir])).stdout.trim();
  proxy = await startRegistryServer({
    command: ({ port, listenHost }) => ({ command: built.node, args: [built.cli, 'proxy', '--upstream', server.url, '--port', String(port), '--host', listenHost, '--chunk-size', String(MiB)] }),
  });
}, 240_000);

afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
  if (built) await rm(built.dir, { recursive: true, force: true });
}, 60_000);

describe('the built CLI outside the repository', () => {
  it('runs on a plain Node >= 20 and prints its commands', async () => {
    const help = ok(await cli(['--help']));
    expect(Number(/^v(\d+)/.exec(built.nodeVersion)?.[1])).toBeGreaterThanOrEqual(20);
    expect(built.cli.startsWith(join(import.meta.dirname, '../..'))).toBe(false);
    for (const command of ['serve', 'push', 'proxy', 'doctor', 'login', 'install-docker-plugin']) expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });

  it('logs in where docker does, refusing a wrong token without storing it', async () => {
    const refused = await cli(['login', server.host, '-u', 'alice', '--password-stdin'], { input: 'not-the-token\n' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refused the credentials of alice/);
    await expect(readFile(join(dockerConfig, 'config.json'), 'utf8')).rejects.toThrow(/ENOENT/);

    ok(await cli(['login', server.host, '-u', 'alice', '--password-stdin'], { input: `${token}\n` }));

    const config = JSON.parse(await readFile(join(dockerConfig, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(config.auths[server.host]!.auth, 'base64').toString()).toBe(`alice:${token}`);
  });

  it('pushes an OCI layout with the credentials login stored, and the registry serves the same manifest', async () => {
    const layout = join(built.dir, 'layout');
    const image = await buildRandomImage({ layout, tag: 'v1', randomBytes: 3 * MiB });

    const push = ok(await cli(['push', `oci:${layout}:v1`, `${server.host}/cli/app:v1`, '--plain-http', '--quiet', '--chunk-size', String(MiB)]));

    expect(push.stdout.trim()).toBe(image.manifestDigest);
    const fetched = await fetch(`${server.url}/v2/cli/app/manifests/v1`, { headers: { authorization: await bearer('cli/app'), accept: MANIFEST_ACCEPT } });
    expect(fetched.status).toBe(200);
    expect(sha256(Buffer.from(await fetched.arrayBuffer()))).toBe(image.manifestDigest);
  });

  it('proxies: a monolithic blob PUT through the built proxy reaches the registry in 1 MiB chunks', async () => {
    const body = Buffer.alloc(3 * MiB + 5, 7);
    const digest = sha256(body);
    const authorization = await bearer('cli/proxied', 'pull,push');

    const start = await fetch(`${proxy.url}/v2/cli/proxied/blobs/uploads/`, { method: 'POST', headers: { authorization } });
    const location = new URL(start.headers.get('location')!, proxy.url);
    location.searchParams.set('digest', digest);
    const put = await fetch(location, { method: 'PUT', headers: { authorization, 'content-type': 'application/octet-stream' }, body });

    expect(start.status).toBe(202);
    expect(put.status).toBe(201);
    const head = await fetch(`${server.url}/v2/cli/proxied/blobs/${digest}`, { method: 'HEAD', headers: { authorization } });
    expect(head.headers.get('content-length')).toBe(String(body.length));
    const patches = server.requests().filter((line) => line.method === 'PATCH' && String(line.path).startsWith('/v2/cli/proxied/'));
    expect(patches).toHaveLength(4);
  });

  it('runs the doctor against the registry it serves, every check passing', async () => {
    const doctor = await cli(['doctor', server.url, '--creds', `alice:${token}`, '--json']);

    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
    const report = JSON.parse(doctor.stdout) as { checks?: Array<{ pass?: boolean; ok?: boolean }> } | Array<unknown>;
    expect(JSON.stringify(report)).not.toMatch(/"(pass|ok|passed)":false/);
  });
});

/** A registry token for `name` from the server's own token endpoint, with alice's access token. */
async function bearer(name: string, actions = 'pull'): Promise<string> {
  const url = `${server.url}/token?service=ocireg&scope=${encodeURIComponent(`repository:${name}:${actions}`)}`;
  const answer = await fetch(url, { headers: { authorization: `Basic ${Buffer.from(`alice:${token}`).toString('base64')}` } });
  expect(answer.status).toBe(200);
  return `Bearer ${((await answer.json()) as { token: string }).token}`;
}

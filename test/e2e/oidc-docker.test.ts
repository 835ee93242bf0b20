import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { githubActionsClaims, startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { requireTools, runOk, runTool } from '../support/tools.ts';

/**
 * A CI job without a stored secret, with the real docker CLI and daemon: `docker login -u oidc --password-stdin`
 * with a GitHub-Actions-shaped ID token from a loopback issuer, then `docker push` where the trust grants it and
 * where it does not.
 */

const AUDIENCE = 'https://registry.test';
let work: string;
let issuer: OidcIssuer;
let server: RegistryServer;
let dockerd: Dockerd;
const ocireg = (...args: string[]) => runOk(process.execPath, [OCIREG_CLI, ...args, '--data-dir', server.dataDir]);
const docker = (args: string[], input?: string) => runTool('docker', args, { env: dockerd.env, ...(input !== undefined ? { input } : {}) });

beforeAll(async () => {
  await requireTools('docker', 'dockerd');
  work = await mkdtemp(join(tmpdir(), 'ocireg-oidc-docker-'));
  issuer = await startOidcIssuer();
  server = await startRegistryServer({ serveArgs: ['--auth'] });
  await ocireg('trust', 'add', 'github-acme', '--issuer', issuer.url, '--audience', AUDIENCE, '--claim', 'repository=acme/*', '--claim', 'ref=refs/heads/main', '--grant', 'acme/*=push');
  dockerd = await startDockerd({ insecureRegistries: [server.host] });
}, 180_000);

afterAll(async () => {
  await dockerd?.stop();
  await server?.stop();
  await issuer?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('docker login -u oidc with a CI ID token', () => {
  it('pushes where the trust grants and is denied elsewhere; a token of another branch cannot log in', async () => {
    // Prepare: an image from random bytes, tagged for an allowed and a forbidden repository
    const host = server.host;
    const context = join(work, 'ctx');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'payload'), randomBytes(512 * 1024));
    expect((await runTool('tar', ['-C', context, '-cf', join(work, 'img.tar'), '.'])).code).toBe(0);
    expect((await docker(['import', join(work, 'img.tar'), `${host}/acme/app:1`])).code).toBe(0);
    expect((await docker(['tag', `${host}/acme/app:1`, `${host}/other/app:1`])).code).toBe(0);

    // Act + Assess: a feature branch's token is refused at login, with the registry's reason
    const feature = await issuer.sign(githubActionsClaims('acme/app', 'refs/heads/feature', AUDIENCE));
    const refused = await docker(['login', host, '-u', 'oidc', '--password-stdin'], `${feature}\n`);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/claim ref="refs\/heads\/feature" does not match/);

    // main's token logs in and pushes to acme/*
    const idToken = await issuer.sign(githubActionsClaims('acme/app', 'refs/heads/main', AUDIENCE));
    const login = await docker(['login', host, '-u', 'oidc', '--password-stdin'], `${idToken}\n`);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toMatch(/Login Succeeded/);
    const push = await docker(['push', `${host}/acme/app:1`]);
    expect(push.code, push.stderr).toBe(0);

    // ... and nowhere else
    const denied = await docker(['push', `${host}/other/app:1`]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr + denied.stdout).toMatch(/denied/);

    // Pull back what was pushed, with the same login
    expect((await docker(['rmi', `${host}/acme/app:1`])).code).toBe(0);
    const pull = await docker(['pull', `${host}/acme/app:1`]);
    expect(pull.code, pull.stderr).toBe(0);
    await docker(['logout', host]);
  });
});

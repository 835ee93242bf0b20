import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, type Containerd } from '../support/containerd.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { requireTools, runOk, runTool } from '../support/tools.ts';

/**
 * Access control with real clients against `ocireg serve --auth`: docker login/push/pull, skopeo --creds,
 * ctr --user, anonymous pull of a public repository and anonymous push refused.
 */

let work: string;
let server: RegistryServer;
let host: string;
let dockerd: Dockerd;
let containerd: Containerd;
const ocireg = (...args: string[]) => runOk(process.execPath, [OCIREG_CLI, ...args, '--data-dir', server.dataDir]);
const docker = (args: string[], input?: string) => runTool('docker', args, { env: dockerd.env, ...(input !== undefined ? { input } : {}) });
const ctr = (args: string[]) => containerd.ctr(args);
const run = runTool;

const users: Record<string, string> = {};

beforeAll(async () => {
  await requireTools('docker', 'dockerd', 'skopeo', 'containerd', 'ctr', 'umoci');
  work = await mkdtemp(join(tmpdir(), 'ocireg-auth-clients-'));
  server = await startRegistryServer({ serveArgs: ['--auth'] });
  host = server.host;

  await ocireg('users', 'add', 'alice');
  await ocireg('grants', 'set', 'alice', 'team/**', 'push');
  users.alice = (await ocireg('tokens', 'create', 'alice')).stdout.trim();
  await ocireg('users', 'add', 'reader');
  await ocireg('grants', 'set', 'reader', 'team/**', 'pull');
  users.reader = (await ocireg('tokens', 'create', 'reader')).stdout.trim();
  await ocireg('repos', 'public', 'pub/**');

  [dockerd, containerd] = await Promise.all([startDockerd({ insecureRegistries: [host] }), startContainerd()]);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([dockerd?.stop(), containerd?.stop()]);
  await server?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('real clients against ocireg serve --auth', () => {
  it('docker login, push, pull; a wrong password fails with docker\'s normal message', async () => {
    // Prepare: a new image from random bytes
    const context = join(work, 'ctx');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'payload'), randomBytes(2 * 1024 * 1024));
    expect((await run('tar', ['-C', context, '-cf', join(work, 'img.tar'), '.'])).code).toBe(0);
    const imported = await docker(['import', join(work, 'img.tar'), `${host}/team/secure:1`]);
    expect(imported.code, imported.stderr).toBe(0);

    // Act + Assess
    const refused = await docker(['login', host, '-u', 'alice', '--password-stdin'], 'ocireg_0000000000000000_wrongwrongwrongwrongwrongwrongwrongwrongwro\n');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/unauthorized: invalid username or access token/);

    const anonymousPush = await docker(['push', `${host}/team/secure:1`]);
    expect(anonymousPush.code).not.toBe(0);

    const login = await docker(['login', host, '-u', 'alice', '--password-stdin'], `${users.alice}\n`);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toMatch(/Login Succeeded/);
    const push = await docker(['push', `${host}/team/secure:1`]);
    expect(push.code, push.stderr).toBe(0);
    const id = (await docker(['image', 'inspect', '--format', '{{.Id}}', `${host}/team/secure:1`])).stdout.trim();
    expect((await docker(['rmi', `${host}/team/secure:1`])).code).toBe(0);
    const pull = await docker(['pull', `${host}/team/secure:1`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect((await docker(['image', 'inspect', '--format', '{{.Id}}', `${host}/team/secure:1`])).stdout.trim()).toBe(id);

    // A repository alice has no grant on: denied.
    await docker(['tag', `${host}/team/secure:1`, `${host}/elsewhere/app:1`]);
    const denied = await docker(['push', `${host}/elsewhere/app:1`]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr + denied.stdout).toMatch(/denied/);
    await docker(['logout', host]);
  });

  it('skopeo --creds pushes and pulls; a reader cannot push; anonymous pulls only public repositories', async () => {
    const layout = join(work, 'layout');
    expect((await run('umoci', ['init', '--layout', layout])).code).toBe(0);
    expect((await run('umoci', ['new', '--image', `${layout}:v1`])).code).toBe(0);
    const push = await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `alice:${users.alice}`, `oci:${layout}:v1`, `docker://${host}/team/skopeo:v1`]);
    expect(push.code, push.stderr).toBe(0);
    const readerPush = await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `reader:${users.reader}`, `oci:${layout}:v1`, `docker://${host}/team/skopeo:v2`]);
    expect(readerPush.code).not.toBe(0);
    const readerPull = await run('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', `reader:${users.reader}`, `docker://${host}/team/skopeo:v1`, `oci:${join(work, 'back')}:v1`]);
    expect(readerPull.code, readerPull.stderr).toBe(0);
    const anonymousPrivate = await run('skopeo', ['inspect', '--tls-verify=false', '--no-creds', `docker://${host}/team/skopeo:v1`]);
    expect(anonymousPrivate.code).not.toBe(0);

    // Public: alice pushes, anyone pulls, nobody anonymous pushes.
    const alicePublic = await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `alice:${users.alice}`, `oci:${layout}:v1`, `docker://${host}/team/skopeo:public`]);
    expect(alicePublic.code).toBe(0);
    await ocireg('grants', 'set', 'alice', 'pub/**', 'push');
    expect((await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `alice:${users.alice}`, `oci:${layout}:v1`, `docker://${host}/pub/app:v1`])).code).toBe(0);
    const anonymousPull = await run('skopeo', ['inspect', '--tls-verify=false', '--no-creds', `docker://${host}/pub/app:v1`]);
    expect(anonymousPull.code, anonymousPull.stderr).toBe(0);
    const anonymousPush = await run('skopeo', ['copy', '--dest-tls-verify=false', '--dest-no-creds', `oci:${layout}:v1`, `docker://${host}/pub/app:v2`]);
    expect(anonymousPush.code).not.toBe(0);
  });

  it('ctr --user pushes with the monolithic PUT path and pulls back', async () => {
    const layout = join(work, 'ctr-layout');
    await run('umoci', ['init', '--layout', layout]);
    await run('umoci', ['new', '--image', `${layout}:v1`]);
    const archive = join(work, 'ctr.tar');
    expect((await run('skopeo', ['copy', `oci:${layout}:v1`, `oci-archive:${archive}:${host}/team/ctr:v1`])).code).toBe(0);
    const imported = await ctr(['images', 'import', '--base-name', `${host}/team/ctr`, '--digests', '--all-platforms', archive]);
    expect(imported.code, imported.stderr).toBe(0);
    const ref = (await ctr(['images', 'ls', '-q'])).stdout.split('\n').find((line) => line.startsWith(`${host}/team/ctr`));
    expect(ref).toBeTruthy();
    const refused = await ctr(['images', 'push', '--plain-http', '--user', 'reader:' + users.reader, `${host}/team/ctr:v1`, ref!]);
    expect(refused.code).not.toBe(0);
    const push = await ctr(['images', 'push', '--plain-http', '--user', `alice:${users.alice}`, `${host}/team/ctr:v1`, ref!]);
    expect(push.code, push.stderr).toBe(0);
    const log = await readFile(join(server.dataDir, 'auth', 'identities.json'), 'utf8');
    expect(JSON.parse(log).tokens[users.alice!.split('_')[1]!].lastUsedAt).toBeGreaterThan(0);
    const pull = await ctr(['images', 'pull', '--plain-http', '--user', `reader:${users.reader}`, `${host}/team/ctr:v1`]);
    expect(pull.code, pull.stderr).toBe(0);
  });
});

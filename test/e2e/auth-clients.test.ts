import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Access control with real clients against `ocireg serve --auth`: docker login/push/pull, skopeo --creds,
 * ctr --user, anonymous pull of a public repository and anonymous push refused.
 */

const execFileAsync = promisify(execFile);
const CLI = join(import.meta.dirname, '../../bin/ocireg.ts');

async function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(command, args, { env: { ...process.env, ...options.env }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

async function requireTool(name: string): Promise<void> {
  const found = await run('sh', ['-c', `command -v ${name}`]);
  if (found.code !== 0) throw new Error(`${name} is missing: apt-get install -y skopeo docker.io containerd umoci (as .ci/run does)`);
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

let work: string;
let server: ChildProcess;
let host: string;
let dockerd: ChildProcess;
let containerd: ChildProcess;
const dockerSocket = () => join(work, 'docker.sock');
const ctrSocket = () => join(work, 'ctr.sock');
const ocireg = (...args: string[]) => execFileAsync(process.execPath, [CLI, ...args, '--data-dir', join(work, 'data')]);
const docker = (args: string[], input?: string) =>
  run('docker', args, { env: { DOCKER_HOST: `unix://${dockerSocket()}`, DOCKER_CONFIG: join(work, 'docker-config') }, ...(input !== undefined ? { input } : {}) });
const ctr = (args: string[]) => run('ctr', ['--address', ctrSocket(), '--namespace', 'e2e', ...args]);

const users: Record<string, string> = {};

beforeAll(async () => {
  for (const tool of ['docker', 'dockerd', 'skopeo', 'containerd', 'ctr']) await requireTool(tool);
  work = await mkdtemp(join('/tmp', 'oa-'));
  server = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', join(work, 'data'), '--auth'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    server.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const line = buffer.split('\n').find((l) => l.includes('"listening"'));
      if (line) resolve(JSON.parse(line).url);
    });
    server.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  server.stdout!.resume();
  host = new URL(url).host;

  await ocireg('users', 'add', 'alice');
  await ocireg('grants', 'set', 'alice', 'team/**', 'push');
  users.alice = (await ocireg('tokens', 'create', 'alice')).stdout.trim();
  await ocireg('users', 'add', 'reader');
  await ocireg('grants', 'set', 'reader', 'team/**', 'pull');
  users.reader = (await ocireg('tokens', 'create', 'reader')).stdout.trim();
  await ocireg('repos', 'public', 'pub/**');

  dockerd = spawn(
    'dockerd',
    ['--iptables=false', '--ip6tables=false', '--bridge=none', '--storage-driver=vfs', `--data-root=${join(work, 'docker')}`, `--exec-root=${join(work, 'dx')}`, `--pidfile=${join(work, 'docker.pid')}`, '-H', `unix://${dockerSocket()}`, '--insecure-registry', host],
    { stdio: 'ignore' },
  );
  await mkdir(join(work, 'ctr'), { recursive: true });
  await writeFile(
    join(work, 'containerd.toml'),
    `version = 2\nroot = "${join(work, 'ctr', 'root')}"\nstate = "${join(work, 'ctr', 'state')}"\n[grpc]\n  address = "${ctrSocket()}"\n[debug]\n  address = ""\n[metrics]\n  address = ""\n`,
  );
  containerd = spawn('containerd', ['--config', join(work, 'containerd.toml')], { stdio: 'ignore' });
  await waitFor(async () => (await docker(['version'])).code === 0, 'dockerd');
  await waitFor(async () => (await ctr(['version'])).code === 0, 'containerd');
}, 120_000);

afterAll(async () => {
  for (const child of [dockerd, containerd, server]) child?.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  for (const child of [dockerd, containerd, server]) if (child && child.exitCode === null) child.kill('SIGKILL');
  await rm(work, { recursive: true, force: true }).catch(() => undefined);
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
    const log = await readFile(join(work, 'data', 'auth', 'identities.json'), 'utf8');
    expect(JSON.parse(log).tokens[users.alice!.split('_')[1]!].lastUsedAt).toBeGreaterThan(0);
    const pull = await ctr(['images', 'pull', '--plain-http', '--user', `reader:${users.reader}`, `${host}/team/ctr:v1`]);
    expect(pull.code, pull.stderr).toBe(0);
  });
});

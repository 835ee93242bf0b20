import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationMatrix, type MatrixTarget } from './authorization-matrix.ts';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../bin/ocireg.ts');

/** `ocireg <args>` against a data dir, as an administrator types it. */
async function ocireg(dataDir: string, ...args: string[]) {
  return run(process.execPath, [CLI, ...args, '--data-dir', dataDir]);
}

interface Server {
  url: string;
  dataDir: string;
  process: ChildProcess;
}

async function startServer(dataDir: string): Promise<Server> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', dataDir, '--auth'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const line = buffer.split('\n').find((l) => l.includes('"listening"'));
      if (line) resolve(JSON.parse(line).url);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  child.stdout!.resume();
  return { url, dataDir, process: child };
}

const servers: Server[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const server of servers) server.process.kill('SIGTERM');
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function freshServer(): Promise<Server> {
  const dir = await mkdtemp(join(tmpdir(), 'ocireg-auth-'));
  dirs.push(dir);
  const server = await startServer(dir);
  servers.push(server);
  return server;
}

function target(server: Server): MatrixTarget & { signingKeyPem: string } {
  return {
    async request(method, path, options = {}) {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers: options.headers ?? {},
        redirect: 'manual',
        ...(options.body !== undefined ? { body: options.body as BodyInit } : {}),
      });
      return { status: response.status, headers: Object.fromEntries(response.headers), body: Buffer.from(await response.arrayBuffer()) };
    },
    async addUser(name, grants, options = {}) {
      await ocireg(server.dataDir, 'users', 'add', name, ...(options.admin ? ['--admin'] : []));
      for (const [glob, level] of grants) await ocireg(server.dataDir, 'grants', 'set', name, glob, level);
      const { stdout } = await ocireg(server.dataDir, 'tokens', 'create', name);
      const token = stdout.trim();
      return { name, token, tokenId: token.split('_')[1]! };
    },
    async revokeToken(id) {
      await ocireg(server.dataDir, 'tokens', 'revoke', id);
    },
    async setPublic(glob) {
      await ocireg(server.dataDir, 'repos', 'public', glob);
    },
    signingKeyPem: '',
  };
}

describe('ocireg serve --auth, administered with the CLI while it runs', () => {
  let server: Server;
  beforeAll(async () => {
    server = await freshServer();
  });

  it('creates its signing key on first start, readable by the owner only', async () => {
    const info = await stat(join(server.dataDir, 'auth', 'signing-key.pem'));
    expect(info.mode & 0o777).toBe(0o600);
    expect(await readFile(join(server.dataDir, 'auth', 'signing-key.pem'), 'utf8')).toMatch(/BEGIN PRIVATE KEY/);
  });

  it('prints only the token on stdout for tokens create, and stores only its hash', async () => {
    await ocireg(server.dataDir, 'users', 'add', 'dora');
    const { stdout, stderr } = await ocireg(server.dataDir, 'tokens', 'create', 'dora', '--scope', 'team/*:pull', '--expires', '30d');
    expect(stdout).toMatch(/^ocireg_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/);
    expect(stderr).toMatch(/shown once/);
    const identities = await readFile(join(server.dataDir, 'auth', 'identities.json'), 'utf8');
    expect(identities).not.toContain(stdout.trim().split('_')[2]);
    expect((await stat(join(server.dataDir, 'auth', 'identities.json'))).mode & 0o777).toBe(0o600);
    const { stdout: listed } = await ocireg(server.dataDir, 'tokens', 'list', 'dora');
    expect(listed).toMatch(/scope=team\/\*:pull/);
  });

  it('applies a new grant without a restart', async () => {
    const client = target(server);
    const erin = await client.addUser('erin', []);
    const basic = { authorization: `Basic ${Buffer.from(`erin:${erin.token}`).toString('base64')}` };
    const before = JSON.parse((await client.request('GET', '/token?scope=repository:team/app:pull,push', { headers: basic })).body.toString());
    expect(JSON.parse(Buffer.from(before.token.split('.')[1], 'base64url').toString()).access[0].actions).toEqual([]);
    await ocireg(server.dataDir, 'grants', 'set', 'erin', 'team/*', 'push');
    const after = JSON.parse((await client.request('GET', '/token?scope=repository:team/app:pull,push', { headers: basic })).body.toString());
    expect(JSON.parse(Buffer.from(after.token.split('.')[1], 'base64url').toString()).access[0].actions).toEqual(['pull', 'push']);
  });

  it('refuses bad admin input with a clear message and exit code 2', async () => {
    await expect(ocireg(server.dataDir, 'grants', 'set', 'dora', 'Team/*', 'pull')).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/repository glob/) });
    await expect(ocireg(server.dataDir, 'grants', 'set', 'dora', 'team/*', 'write')).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/pull, push, delete, admin/) });
    await expect(ocireg(server.dataDir, 'tokens', 'create', 'nobody')).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/no user nobody/) });
  });
});

describe('authorization matrix against ocireg serve --auth over HTTP', () => {
  authorizationMatrix(async () => {
    const server = await freshServer();
    return { ...target(server), signingKeyPem: await readFile(join(server.dataDir, 'auth', 'signing-key.pem'), 'utf8') };
  });
});

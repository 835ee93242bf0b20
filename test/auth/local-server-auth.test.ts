import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { runOk, runTool } from '../support/tools.ts';
import { authorizationMatrix, httpRequest, type MatrixTarget } from './authorization-matrix.ts';

/** `ocireg <args>` against a data dir, as an administrator types it. */
function ocireg(dataDir: string, ...args: string[]) {
  return runOk(process.execPath, [OCIREG_CLI, ...args, '--data-dir', dataDir]);
}

const servers: RegistryServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

async function freshServer(): Promise<RegistryServer> {
  const server = await startRegistryServer({ serveArgs: ['--auth'] });
  servers.push(server);
  return server;
}

function target(server: RegistryServer): Omit<MatrixTarget, 'signingKeyPem'> {
  return {
    request: httpRequest(server.url),
    async addUser(name, grants, options = {}) {
      await ocireg(server.dataDir, 'users', 'add', name, ...(options.admin ? ['--admin'] : []));
      for (const [glob, level] of grants) await ocireg(server.dataDir, 'grants', 'set', name, glob, level);
      const token = (await ocireg(server.dataDir, 'tokens', 'create', name)).stdout.trim();
      return { name, token, tokenId: token.split('_')[1]! };
    },
    async revokeToken(id) {
      await ocireg(server.dataDir, 'tokens', 'revoke', id);
    },
    async addTeam(name, grants, members) {
      await ocireg(server.dataDir, 'teams', 'add', name);
      for (const [glob, level] of grants) await ocireg(server.dataDir, 'grants', 'set', '--team', name, glob, level);
      for (const member of members) await ocireg(server.dataDir, 'teams', 'members', 'add', name, member);
    },
    async removeTeamMember(team, user) {
      await ocireg(server.dataDir, 'teams', 'members', 'rm', team, user);
    },
    async setPublic(glob) {
      await ocireg(server.dataDir, 'repos', 'public', glob);
    },
  };
}

describe('ocireg serve --auth, administered with the CLI while it runs', () => {
  let server: RegistryServer;
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
    // The secret is base64url, which may itself hold `_`: everything after `ocireg_<id>_`.
    const secret = stdout.trim().slice('ocireg_'.length + 16 + 1);
    expect(secret).toHaveLength(43);
    expect(identities).not.toContain(secret);
    expect((await stat(join(server.dataDir, 'auth', 'identities.json'))).mode & 0o777).toBe(0o600);
    const { stdout: listed } = await ocireg(server.dataDir, 'tokens', 'list', 'dora');
    expect(listed).toMatch(/scope=team\/\*:pull/);
  });

  it('applies a new grant without a restart', async () => {
    const client = target(server);
    const erin = await client.addUser('erin', []);
    const basic = { authorization: `Basic ${Buffer.from(`erin:${erin.token}`).toString('base64')}` };
    const actions = async () => {
      const body = JSON.parse((await client.request('GET', '/token?scope=repository:team/app:pull,push', { headers: basic })).body.toString());
      return JSON.parse(Buffer.from(body.token.split('.')[1], 'base64url').toString()).access[0].actions;
    };
    expect(await actions()).toEqual([]);
    await ocireg(server.dataDir, 'grants', 'set', 'erin', 'team/*', 'push');
    expect(await actions()).toEqual(['pull', 'push']);
  });

  it("gives a team member the team's grants at once, and shows where each grant comes from", async () => {
    const client = target(server);
    const fay = await client.addUser('fay', [['fay/*', 'admin']]);
    const basic = { authorization: `Basic ${Buffer.from(`fay:${fay.token}`).toString('base64')}` };
    const actions = async () => {
      const body = JSON.parse((await client.request('GET', '/token?scope=repository:acme/app:pull,push,delete', { headers: basic })).body.toString());
      return JSON.parse(Buffer.from(body.token.split('.')[1], 'base64url').toString()).access[0].actions;
    };
    await ocireg(server.dataDir, 'teams', 'add', 'backend');
    await ocireg(server.dataDir, 'grants', 'set', '--team', 'backend', 'acme/*', 'push');
    expect(await actions()).toEqual([]);
    await ocireg(server.dataDir, 'teams', 'members', 'add', 'backend', 'fay');
    expect(await actions()).toEqual(['pull', 'push']);
    const shown = await ocireg(server.dataDir, 'users', 'show', 'fay');
    expect(shown.stdout).toBe('fay/*\tadmin\tuser\nacme/*\tpush\tteam:backend\n');
    expect(shown.stderr).toMatch(/teams: backend/);
    expect((await ocireg(server.dataDir, 'teams', 'list')).stdout).toBe('backend\tfay\tacme/*=push\n');
    expect((await ocireg(server.dataDir, 'grants', 'list', '--team', 'backend')).stdout).toBe('team:backend\tacme/*\tpush\n');
    await ocireg(server.dataDir, 'teams', 'members', 'rm', 'backend', 'fay');
    expect(await actions()).toEqual([]);
    await ocireg(server.dataDir, 'teams', 'members', 'add', 'backend', 'fay');
    await ocireg(server.dataDir, 'grants', 'remove', '--team', 'backend', 'acme/*');
    expect(await actions()).toEqual([]);
    await ocireg(server.dataDir, 'teams', 'rm', 'backend');
    expect((await ocireg(server.dataDir, 'teams', 'list')).stdout).toBe('');
  });

  it('names what is missing when a team command cannot apply', async () => {
    const cli = (...args: string[]) => runTool(process.execPath, [OCIREG_CLI, ...args, '--data-dir', server.dataDir]);
    expect(await cli('teams', 'members', 'add', 'ghosts', 'dora')).toMatchObject({ code: 1, stderr: expect.stringMatching(/no team ghosts; create it first/) });
    await cli('teams', 'add', 'ops');
    expect(await cli('teams', 'add', 'ops')).toMatchObject({ code: 1, stderr: expect.stringMatching(/exists already/) });
    expect(await cli('teams', 'members', 'add', 'ops', 'nobody')).toMatchObject({ code: 1, stderr: expect.stringMatching(/no user nobody/) });
    expect(await cli('grants', 'set', '--team', 'ghosts', 'x/*', 'pull')).toMatchObject({ code: 1, stderr: expect.stringMatching(/no team ghosts/) });
    expect(await cli('teams', 'add', 'Ops#1')).toMatchObject({ code: 2, stderr: expect.stringMatching(/team names are/) });
    expect(await cli('users', 'show', 'nobody')).toMatchObject({ code: 1, stderr: expect.stringMatching(/no user nobody/) });
  });

  it('refuses bad admin input with a clear message and exit code 2 (1 for a missing user)', async () => {
    const cli = (...args: string[]) => runTool(process.execPath, [OCIREG_CLI, ...args, '--data-dir', server.dataDir]);
    expect(await cli('grants', 'set', 'dora', 'Team/*', 'pull')).toMatchObject({ code: 2, stderr: expect.stringMatching(/repository glob/) });
    expect(await cli('grants', 'set', 'dora', 'team/*', 'write')).toMatchObject({ code: 2, stderr: expect.stringMatching(/pull, push, delete, admin/) });
    expect(await cli('tokens', 'create', 'nobody')).toMatchObject({ code: 1, stderr: expect.stringMatching(/no user nobody/) });
    expect(await cli('repos', 'hide', 'team/*')).toMatchObject({ code: 2, stderr: expect.stringMatching(/repos takes public, private or list-public, got "hide"/) });
  });
});

describe('authorization matrix against ocireg serve --auth over HTTP', () => {
  authorizationMatrix(async () => {
    const server = await freshServer();
    return { ...target(server), signingKeyPem: await readFile(join(server.dataDir, 'auth', 'signing-key.pem'), 'utf8') };
  });
});

import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevAws, type DevAws } from '../../bin/dev-aws.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../lib/dev/aws-local.ts';
import { githubActionsClaims, startOidcIssuer } from '../support/oidc-issuer.ts';
import { OCIREG_CLI } from '../support/registry-server.ts';
import { runOk } from '../support/tools.ts';
import { authorizationMatrix, httpRequest, type MatrixTarget } from './authorization-matrix.ts';

/**
 * Access control on the emulated AWS deployment: the Lambda handler with auth on, identities in DynamoDB Local,
 * administered with `ocireg … --table` as an administrator would against a deployed stack.
 */

let dev: DevAws;
beforeAll(async () => {
  dev = await startDevAws({ auth: true, logLevel: 'WARN' });
}, 120_000);
afterAll(async () => {
  await dev?.stop();
});

function admin(...args: string[]) {
  return runOk(process.execPath, [OCIREG_CLI, ...args, '--table', dev.names.table], {
    env: {
      AWS_ENDPOINT_URL_DYNAMODB: dev.endpoints.dynamo,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_REGION: LOCAL_REGION,
    },
  });
}

const target = (): MatrixTarget => ({
  request: (...args) => httpRequest(dev.url)(...args),
  async addUser(name, grants, options = {}) {
    await admin('users', 'add', name, ...(options.admin ? ['--admin'] : []));
    for (const [glob, level] of grants) await admin('grants', 'set', name, glob, level);
    const token = (await admin('tokens', 'create', name)).stdout.trim();
    return { name, token, tokenId: token.split('_')[1]! };
  },
  async revokeToken(id) {
    await admin('tokens', 'revoke', id);
  },
  async addTeam(name, grants, members) {
    await admin('teams', 'add', name);
    for (const [glob, level] of grants) await admin('grants', 'set', '--team', name, glob, level);
    for (const member of members) await admin('teams', 'members', 'add', name, member);
  },
  async removeTeamMember(team, user) {
    await admin('teams', 'members', 'rm', team, user);
  },
  async setPublic(glob) {
    await admin('repos', 'public', glob);
  },
  get signingKeyPem() {
    return dev.signingKeyPem!;
  },
  blobGetStatus: 307,
});

describe('authorization matrix on the emulated AWS deployment', () => {
  it('lists users made with the admin CLI against the table', async () => {
    await admin('users', 'add', 'listed', '--admin');
    expect((await admin('users', 'list')).stdout).toMatch(/^listed\tadmin\t/m);
  });

  it('shows a user\'s own and team grants from the table', async () => {
    await admin('users', 'add', 'gil');
    await admin('grants', 'set', 'gil', 'gil/**', 'delete');
    await admin('teams', 'add', 'platform');
    await admin('grants', 'set', '--team', 'platform', 'infra/*', 'push');
    await admin('teams', 'members', 'add', 'platform', 'gil');
    expect((await admin('users', 'show', 'gil')).stdout).toBe('gil/**\tdelete\tuser\ninfra/*\tpush\tteam:platform\n');
    expect((await admin('teams', 'list')).stdout).toMatch(/^platform\tgil\tinfra\/\*=push$/m);
    await admin('users', 'remove', 'gil');
    expect((await admin('teams', 'list')).stdout).toMatch(/^platform\t-\tinfra\/\*=push$/m);
  });

  it('accepts a CI ID token of a trust made with --table, in the Lambda handler, within the trust\'s grants', async () => {
    const issuer = await startOidcIssuer();
    try {
      await admin('trust', 'add', 'gh', '--issuer', issuer.url, '--audience', 'ocireg-aws', '--claim', 'repository=acme/*', '--grant', 'acme/**=push');
      expect((await admin('trust', 'list')).stdout).toMatch(/^gh\t/m);
      const idToken = await issuer.sign(githubActionsClaims('acme/app', 'refs/heads/main', 'ocireg-aws'));
      const basic = { authorization: `Basic ${Buffer.from(`oidc:${idToken}`).toString('base64')}` };
      const response = await httpRequest(dev.url)('GET', '/token?service=ocireg&scope=repository:acme/app:pull,push&scope=repository:other/app:pull,push', { headers: basic });
      expect(response.status, response.body.toString()).toBe(200);
      const { token } = JSON.parse(response.body.toString());
      expect(decodeJwt(token).access).toEqual([
        { type: 'repository', name: 'acme/app', actions: ['pull', 'push'] },
        { type: 'repository', name: 'other/app', actions: [] },
      ]);
      const upload = await httpRequest(dev.url)('POST', '/v2/acme/app/blobs/uploads/', { headers: { authorization: `Bearer ${token}` } });
      expect(upload.status).toBe(202);
      const wrongAudience = await issuer.sign(githubActionsClaims('acme/app', 'refs/heads/main', 'elsewhere'));
      const refused = await httpRequest(dev.url)('GET', '/token?service=ocireg', { headers: { authorization: `Basic ${Buffer.from(`oidc:${wrongAudience}`).toString('base64')}` } });
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.body.toString()).errors[0].message).toMatch(/gh: audience "elsewhere" is not the trust's/);
      await admin('trust', 'rm', 'gh');
    } finally {
      await issuer.stop();
    }
  });

  authorizationMatrix(async () => target());
});

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distributionRegistry, type DistributionRegistry } from '../support/distribution-registry.ts';
import { blobPath, buildRandomImage, MANIFEST_ACCEPT, MiB, sameFileBytes, type LayoutImage } from '../support/images.ts';
import { PULL_CACHE_TARGETS, startPullCacheTarget, type PullCacheTarget } from '../support/pull-cache-target.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { startTokenServer, type TokenServer } from '../support/token-server.ts';
import { describeFailure, requireTools, runOk, runTool } from '../support/tools.ts';

/**
 * The pull-through cache against upstreams that need credentials, through `ocireg serve --auth` and `dev:aws` with
 * auth (the cache itself protected too; on dev:aws the rules' credentials in Secrets Manager, read by both functions):
 * - Bearer token auth: another `ocireg serve --auth` (a real token-auth registry: challenge, /token, JWT) with a
 *   public `pub/**` (anonymous tokens) and a private `private/**` readable by the user `mirror`;
 * - Bearer token auth with the realm on another host, as Docker Hub does: CNCF Distribution (`docker-registry`) with
 *   `auth: token`, trusting a token server of ours on another port (test/support/token-server.ts, ES256 JWTs);
 * - Basic auth: CNCF Distribution with its htpasswd auth.
 * Rules: anonymous, with the right credentials (`cache add --username --password-stdin`) and with a wrong password.
 * The upstreams are shared by both targets (nothing here changes them); each target is a cache of its own.
 */

/** dev:aws: the 2 MiB image is copied within the pull; the 3 MiB layer of `private/big` by the copy function. */
const COPY_IN_REQUEST_MAX_BYTES = 2.5 * MiB;
const dirs = tempDirs('ocireg-pull-cache-auth-');
let work: string;
let tokenUpstream: RegistryServer;
let basicUpstream: DistributionRegistry;
let tokenServer: TokenServer;
let distributionTokenUpstream: DistributionRegistry;
let image: LayoutImage;
let big: LayoutImage;

const skopeo = (args: string[]) => runTool('skopeo', args, { timeoutMs: 180_000 });
const ociregAt = (dataDir: string, args: string[]) => runOk(process.execPath, [OCIREG_CLI, ...args, '--data-dir', dataDir]);

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'docker-registry');
  work = await dirs.make();
  image = await buildRandomImage({ layout: join(work, 'src'), tag: 'one', randomBytes: 2 * MiB });
  big = await buildRandomImage({ layout: join(work, 'big'), tag: 'one', randomBytes: 3 * MiB });

  // Token-auth upstream: pusher writes everything, mirror reads private/**, anyone reads pub/**.
  tokenUpstream = await startRegistryServer({ serveArgs: ['--auth'] });
  const upstreamDir = tokenUpstream.dataDir;
  await ociregAt(upstreamDir, ['users', 'add', 'pusher']);
  await ociregAt(upstreamDir, ['grants', 'set', 'pusher', '**', 'push']);
  const pusher = (await ociregAt(upstreamDir, ['tokens', 'create', 'pusher'])).stdout.trim();
  await ociregAt(upstreamDir, ['users', 'add', 'mirror']);
  await ociregAt(upstreamDir, ['grants', 'set', 'mirror', 'private/**', 'pull']);
  await ociregAt(upstreamDir, ['repos', 'public', 'pub/**']);
  for (const name of ['pub/app', 'private/app']) {
    const push = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `pusher:${pusher}`, image.ref, `docker://${tokenUpstream.host}/${name}:1`]);
    expect(push.code, describeFailure(push)).toBe(0);
  }

  // Basic-auth upstream.
  basicUpstream = await distributionRegistry(join(work, 'basic'), { htpasswd: { mirror: 'right-password' } });
  await basicUpstream.start();
  const push = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', 'mirror:right-password', image.ref, `docker://${basicUpstream.host}/library/app:1`]);
  expect(push.code, describeFailure(push)).toBe(0);

  // Distribution with token auth and the realm on another port.
  tokenServer = await startTokenServer(work, { users: { mirror: 'mirror-secret', pusher: 'pusher-secret' }, pushers: ['pusher'] });
  distributionTokenUpstream = await distributionRegistry(join(work, 'token'), { token: tokenServer });
  await distributionTokenUpstream.start();
  for (const [from, name] of [[image, 'pub/app'], [image, 'private/app'], [big, 'private/big']] as const) {
    const copied = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', 'pusher:pusher-secret', from.ref, `docker://${distributionTokenUpstream.host}/${name}:1`]);
    expect(copied.code, describeFailure(copied)).toBe(0);
  }
}, 300_000);

afterAll(async () => {
  await tokenUpstream?.stop();
  await basicUpstream?.stop();
  await distributionTokenUpstream?.stop();
  await tokenServer?.stop();
  await dirs.cleanUp();
});

function firstError(body: string): { code: string; message: string } {
  return (JSON.parse(body) as { errors: Array<{ code: string; message: string }> }).errors[0]!;
}

describe.each(PULL_CACHE_TARGETS)('pull-through cache with upstream credentials, on %s with auth', (kind) => {
  let cache: PullCacheTarget;
  /** Access tokens: the token upstream's `mirror`, and the cache's users, by name. */
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    tokens.mirror = (await ociregAt(tokenUpstream.dataDir, ['tokens', 'create', 'mirror'])).stdout.trim();
    const mirror = (password: string) => ({ username: 'mirror', password });
    // The cache, with auth: dev may pull everything, writer may push under priv/, nobody has no grant.
    cache = await startPullCacheTarget(kind, {
      auth: true,
      revalidateSeconds: 60,
      copyInRequestMaxBytes: COPY_IN_REQUEST_MAX_BYTES,
      rules: [
        { prefix: 'anon', upstream: tokenUpstream.url },
        { prefix: 'priv', upstream: tokenUpstream.url, credentials: mirror(tokens.mirror) },
        { prefix: 'wrong', upstream: tokenUpstream.url, credentials: mirror(`${tokens.mirror}x`) },
        { prefix: 'basic', upstream: basicUpstream.url, credentials: mirror('right-password') },
        { prefix: 'basicwrong', upstream: basicUpstream.url, credentials: mirror('wrong-password') },
        { prefix: 'basicanon', upstream: basicUpstream.url },
        { prefix: 'dtok-anon', upstream: distributionTokenUpstream.url },
        { prefix: 'dtok', upstream: distributionTokenUpstream.url, credentials: mirror('mirror-secret') },
        { prefix: 'dtok-wrong', upstream: distributionTokenUpstream.url, credentials: mirror('not-the-secret') },
      ],
    });
    for (const [user, glob, level] of [['dev', '**', 'pull'], ['writer', 'priv/**', 'push'], ['nobody', 'elsewhere/**', 'pull']] as const) {
      await cache.ocireg(['users', 'add', user]);
      await cache.ocireg(['grants', 'set', user, glob, level]);
      tokens[user] = (await cache.ocireg(['tokens', 'create', user])).stdout.trim();
    }
  }, 240_000);

  afterAll(async () => {
    await cache?.stop();
  });

  /** A Bearer token of the cache for `scope`, the way docker gets one (challenge, then GET realm with Basic). */
  async function bearer(user: string, scope: string): Promise<string> {
    const challenge = (await fetch(`${cache.url}/v2/`)).headers.get('www-authenticate') ?? '';
    const realm = /realm="([^"]+)"/.exec(challenge)![1]!;
    const service = /service="([^"]+)"/.exec(challenge)![1]!;
    const response = await fetch(`${realm}?service=${encodeURIComponent(service)}&scope=${encodeURIComponent(scope)}`, {
      headers: { authorization: `Basic ${Buffer.from(`${user}:${tokens[user]}`).toString('base64')}` },
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { token: string }).token;
  }

  async function getManifest(user: string, name: string, reference: string): Promise<{ status: number; body: string }> {
    const token = await bearer(user, `repository:${name}:pull`);
    const response = await fetch(`${cache.url}/v2/${name}/manifests/${reference}`, { headers: { accept: MANIFEST_ACCEPT, authorization: `Bearer ${token}` } });
    return { status: response.status, body: await response.text() };
  }

  async function pullWithSkopeo(name: string, expected = image): Promise<void> {
    const back = join(work, `${kind.replace(':', '-')}-${name.replaceAll('/', '-')}`);
    const pull = await skopeo(['copy', '--src-tls-verify=false', '--src-creds', `dev:${tokens.dev}`, `docker://${cache.host}/${name}:1`, `oci:${back}:1`]);
    expect(pull.code, describeFailure(pull)).toBe(0);
    for (const blob of expected.blobs) expect(await sameFileBytes(blobPath(back, blob.digest), blobPath(expected.layout, blob.digest)), blob.digest).toBe(true);
  }

  it('pulls a public repository of a token-auth upstream anonymously (anonymous token)', async () => {
    await pullWithSkopeo('anon/pub/app');
  });

  it('pulls a private repository of a token-auth upstream with the credentials stored by cache add --password-stdin', async () => {
    await pullWithSkopeo('priv/private/app');
  });

  it('answers 403 DENIED naming the rule when the token-auth upstream refuses anonymous access', async () => {
    const answer = await getManifest('dev', 'anon/private/app', '1');

    expect(answer.status).toBe(403);
    const error = firstError(answer.body);
    expect(error.code).toBe('DENIED');
    expect(error.message).toContain(`the upstream ${tokenUpstream.url} refused anonymous access (cache rule anon has no credentials`);
  });

  it('answers 403 DENIED naming the rule and user when the token endpoint refuses the stored password', async () => {
    const answer = await getManifest('dev', 'wrong/private/app', '1');

    expect(answer.status).toBe(403);
    const error = firstError(answer.body);
    expect(error.code).toBe('DENIED');
    expect(error.message).toContain(`refused the credentials of mirror stored in cache rule wrong for private/app: it answered 401`);
    expect(JSON.stringify(cache.lines())).not.toMatch(/at .*\.ts:\d+/);
  });

  it('pulls from docker-registry with token auth (realm on another port): anonymously a public repository, with the stored credentials a private one', async () => {
    const since = tokenServer.requests().length;

    await pullWithSkopeo('dtok-anon/pub/app');
    await pullWithSkopeo('dtok/private/app');

    expect(tokenServer.requests().slice(since)).toEqual(expect.arrayContaining([{ account: 'anonymous', status: 200 }, { account: 'mirror', status: 200 }]));
  });

  it('answers 403 DENIED when docker-registry refuses the anonymous token, or its token server the stored password', async () => {
    const since = tokenServer.requests().length;

    const anonymous = await getManifest('dev', 'dtok-anon/private/app', '1');
    const wrong = await getManifest('dev', 'dtok-wrong/private/app', '1');

    expect(anonymous.status).toBe(403);
    expect(firstError(anonymous.body)).toMatchObject({ code: 'DENIED', message: expect.stringContaining('refused anonymous access (cache rule dtok-anon has no credentials') });
    expect(wrong.status).toBe(403);
    expect(firstError(wrong.body)).toMatchObject({ code: 'DENIED', message: expect.stringContaining('refused the credentials of mirror stored in cache rule dtok-wrong for private/app: it answered 401') });
    expect(tokenServer.requests().slice(since)).toContainEqual({ account: 'mirror', status: 401 });
  });

  if (kind === 'dev:aws') {
    it('copies a large blob of a private repository in the copy function with the stored credentials (503 while it runs: the upstream serves it only behind its token), then serves it from S3', async () => {
      // Prepare
      const layer = big.manifest.layers[0]!;
      expect(layer.size).toBeGreaterThan(COPY_IN_REQUEST_MAX_BYTES);
      const token = await bearer('dev', 'repository:dtok/private/big:pull');
      const get = () => fetch(`${cache.url}/v2/dtok/private/big/blobs/${layer.digest}`, { headers: { authorization: `Bearer ${token}` }, redirect: 'manual' });
      const since = tokenServer.requests().length;

      // Act
      const during = await get();
      await cache.settled();
      const after = await get();

      // Assess
      expect(during.status).toBe(503);
      expect(firstError(await during.text())).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('being copied into the cache') });
      expect(cache.copyInvocations()).toContainEqual({ name: 'dtok/private/big', digest: layer.digest });
      expect(tokenServer.requests().slice(since)).toContainEqual({ account: 'mirror', status: 200 });
      expect(await cache.hasBlob(layer.digest)).toBe(true);
      expect(after.status).toBe(307);
      await pullWithSkopeo('dtok/private/big', big);
    });
  }

  it('answers 404 BLOB_UNKNOWN to a HEAD and a GET of a blob the upstream does not have, through the stored credentials', async () => {
    const token = await bearer('dev', 'repository:dtok/private/app:pull');
    const absent = `sha256:${'0'.repeat(64)}`;
    const url = `${cache.url}/v2/dtok/private/app/blobs/${absent}`;

    const answers = [await fetch(url, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } }), await fetch(url, { headers: { authorization: `Bearer ${token}` }, redirect: 'manual' })];

    expect(answers.map((answer) => answer.status)).toEqual([404, 404]);
    expect(firstError(await answers[1]!.text()).code).toBe('BLOB_UNKNOWN');
    expect(cache.copyInvocations()).not.toContainEqual({ name: 'dtok/private/app', digest: absent });
  });

  it('pulls from a Basic-auth (htpasswd) upstream with the stored credentials', async () => {
    await pullWithSkopeo('basic/library/app');
  });

  it('answers 403 DENIED when the Basic-auth upstream refuses the stored password or anonymous access', async () => {
    const wrong = await getManifest('dev', 'basicwrong/library/app', '1');
    const anonymous = await getManifest('dev', 'basicanon/library/app', '1');

    expect(wrong.status).toBe(403);
    expect(firstError(wrong.body).message).toContain('refused the credentials of mirror stored in cache rule basicwrong');
    expect(anonymous.status).toBe(403);
    expect(firstError(anonymous.body).message).toContain('refused anonymous access (cache rule basicanon has no credentials');
  });

  it('keeps cached repositories under the same grants: no grant, no pull (and no upstream fetch); a push grant still cannot push', async () => {
    // Prepare: a manifest the cache has not fetched yet.
    const before = tokenUpstream.requests().length;

    // Act
    const refused = await fetch(`${cache.url}/v2/priv/pub/app/manifests/1`, {
      headers: { accept: MANIFEST_ACCEPT, authorization: `Bearer ${await bearer('nobody', 'repository:priv/pub/app:pull')}` },
    });
    const upload = await fetch(`${cache.url}/v2/priv/private/app/blobs/uploads/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await bearer('writer', 'repository:priv/private/app:pull,push')}` },
    });
    const push = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `writer:${tokens.writer}`, image.ref, `docker://${cache.host}/priv/private/app:mine`]);

    // Assess
    expect(before).toBeGreaterThan(0);
    expect(refused.status).toBe(403);
    expect(firstError(await refused.text())).toEqual({ code: 'DENIED', message: 'requested access to the resource is denied', detail: expect.anything() });
    expect(tokenUpstream.requests().length).toBe(before);
    expect(upload.status).toBe(403);
    expect(firstError(await upload.text())).toMatchObject({ code: 'DENIED', message: expect.stringContaining('read-only pull-through cache') });
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain('read-only pull-through cache');
  });
});

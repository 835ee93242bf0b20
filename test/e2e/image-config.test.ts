import { createHash } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevAws, type DevAws } from '../../bin/dev-aws.ts';
import { MAX_CONFIG_BYTES } from '../../lib/http/image-config.ts';
import { pushImage, type Target } from '../console/console-fixtures.ts';
import { awsAdminEnv } from '../support/aws-admin-env.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { runOk } from '../support/tools.ts';

/**
 * `GET /v2/<name>/_ocireg/config/<digest>` over HTTP on both deployments: `ocireg serve --auth` on a data dir (the fs
 * store streams the bytes) and dev:aws (the Lambda handler behind the emulated HTTP API; the S3 store would answer a
 * blob GET with a 307, so the function reads the config from s3rver itself). Same answers on both: the bytes with a
 * 200 (never a redirect), the access of a blob GET, and OCI errors for what is not a small JSON config.
 */

interface Deployment {
  url: string;
  /** `ocireg <args> --data-dir …` or `… --table …`. */
  admin(...args: string[]): Promise<{ stdout: string }>;
  /** Overwrites the stored bytes of a blob behind the registry's back (a disk or bucket gone wrong). */
  corrupt(blob: { name: string; digest: string; bearer: string }, bytes: Uint8Array): Promise<void>;
  stop(): Promise<unknown>;
}

const sha256 = (bytes: Uint8Array) => 'sha256:' + createHash('sha256').update(bytes).digest('hex');

async function token(url: string, scope: string, user?: { name: string; secret: string }): Promise<string> {
  const headers: Record<string, string> = user ? { authorization: 'Basic ' + Buffer.from(`${user.name}:${user.secret}`).toString('base64') } : {};
  const res = await fetch(`${url}/token?service=ocireg&scope=${scope}`, { headers });
  expect(res.status).toBe(200);
  return ((await res.json()) as { token: string }).token;
}

/** A blob pushed whole (POST with `digest`), whatever its bytes: a config that is not one, or one too large. */
async function pushBlob(target: Target, name: string, bytes: Uint8Array): Promise<string> {
  const digest = sha256(bytes);
  const bearer = await token(target.url, `repository:${name}:pull,push`, target.user);
  const res = await fetch(`${target.url}/v2/${name}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/octet-stream' },
    body: new Uint8Array(bytes),
  });
  expect(res.status, await res.text()).toBe(201);
  return digest;
}

function configStory(label: string, start: () => Promise<Deployment>) {
  describe(`GET /v2/<name>/_ocireg/config/<digest> on ${label}`, () => {
    let deployment: Deployment;
    const secrets: Record<string, string> = {};
    const as = (name: string) => ({ name, secret: secrets[name]! });
    let image: Awaited<ReturnType<typeof pushImage>>;
    let publicImage: Awaited<ReturnType<typeof pushImage>>;
    let array: string;
    let oversized: string;
    const get = (path: string, bearer?: string) => fetch(deployment.url + path, { redirect: 'manual', headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });

    beforeAll(async () => {
      deployment = await start();
      for (const [user, glob, level] of [['alice', 'team/**', 'push'], ['alice', 'pub/**', 'push'], ['bob', 'other/**', 'push']] as const) {
        if (secrets[user] === undefined) {
          await deployment.admin('users', 'add', user);
          secrets[user] = (await deployment.admin('tokens', 'create', user)).stdout.trim();
        }
        await deployment.admin('grants', 'set', user, glob, level);
      }
      await deployment.admin('repos', 'public', 'pub/**');
      const alice: Target = { url: deployment.url, user: as('alice') };
      image = await pushImage(alice, 'team/app', 'v1', { architecture: 'arm64' });
      publicImage = await pushImage(alice, 'pub/tool', '1.0');
      array = await pushBlob(alice, 'team/app', new TextEncoder().encode('[{"os":"linux"}]'));
      oversized = await pushBlob(alice, 'team/app', new TextEncoder().encode(JSON.stringify({ pad: 'x'.repeat(MAX_CONFIG_BYTES) })));
    }, 240_000);

    afterAll(async () => {
      await deployment?.stop();
    });

    it('answers the config as stored with a 200 where a blob GET may redirect, under pull permission', async () => {
      // Act
      const bearer = await token(deployment.url, 'repository:team/app:pull', as('alice'));
      const res = await get(`/v2/team/app/_ocireg/config/${image.config.digest}`, bearer);
      // Assess
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(res.headers.get('docker-content-digest')).toBe(image.config.digest);
      const bytes = new Uint8Array(await res.arrayBuffer());
      expect([sha256(bytes), bytes.byteLength]).toEqual([image.config.digest, image.config.size]);
      expect(JSON.parse(new TextDecoder().decode(bytes))).toMatchObject({ architecture: 'arm64', config: { Entrypoint: ['/usr/bin/app', '--serve'] } });
    });

    it('challenges anonymous callers and denies a user without pull, exactly as a blob GET does', async () => {
      // Act
      const anonymous = await get(`/v2/team/app/_ocireg/config/${image.config.digest}`);
      const bobs = await token(deployment.url, 'repository:team/app:pull', as('bob'));
      const denied = await get(`/v2/team/app/_ocireg/config/${image.config.digest}`, bobs);
      const deniedBlob = await get(`/v2/team/app/blobs/${image.config.digest}`, bobs);
      // Assess
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toContain('scope="repository:team/app:pull"');
      const codeOf = async (res: Response) => [res.status, ((await res.json()) as { errors: { code: string }[] }).errors[0]!.code];
      expect(await codeOf(denied)).toEqual(await codeOf(deniedBlob));
      expect(denied.status).toBe(403);
    });

    it('answers an anonymous caller on a public repository', async () => {
      // Act
      const anonymousToken = await token(deployment.url, 'repository:pub/tool:pull');
      const res = await get(`/v2/pub/tool/_ocireg/config/${publicImage.config.digest}`, anonymousToken);
      // Assess
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ os: 'linux', architecture: 'amd64', config: { Labels: { 'org.opencontainers.image.source': 'https://example.test/app' } } });
    });

    it('answers a 500 UNKNOWN, not the bytes, when the stored bytes no longer match the digest', async () => {
      // Prepare
      const alice: Target = { url: deployment.url, user: as('alice') };
      const victim = await pushImage(alice, 'team/corrupt', 'v1');
      const bearer = await token(deployment.url, 'repository:team/corrupt:pull', as('alice'));
      const path = `/v2/team/corrupt/_ocireg/config/${victim.config.digest}`;
      const before = await get(path, bearer);
      const altered = new TextEncoder().encode(JSON.stringify({ os: 'evil', pad: '' }).padEnd(victim.config.size, ' '));
      await deployment.corrupt({ name: 'team/corrupt', digest: victim.config.digest, bearer }, altered);
      // Act
      const after = await get(path, bearer);
      // Assess
      expect(before.status).toBe(200);
      expect(after.status).toBe(500);
      const error = ((await after.json()) as { errors: { code: string; message: string; detail: { actual: string } }[] }).errors[0]!;
      expect(error.code).toBe('UNKNOWN');
      expect(error.message).toContain('do not match its digest');
      expect(error.detail.actual).toBe(sha256(altered));
    });

    it('refuses an unknown digest (404), a layer or a JSON array (405) and a blob over 1 MiB (400) with OCI errors', async () => {
      // Prepare
      const bearer = await token(deployment.url, 'repository:team/app:pull', as('alice'));
      const errorOf = async (digest: string) => {
        const res = await get(`/v2/team/app/_ocireg/config/${digest}`, bearer);
        const body = (await res.json()) as { errors: { code: string; detail: unknown }[] };
        return { status: res.status, code: body.errors[0]!.code, detail: body.errors[0]!.detail };
      };
      // Act
      const unknown = await errorOf(`sha256:${'0'.repeat(64)}`);
      const layer = await errorOf(image.layers[0]!.digest);
      const notObject = await errorOf(array);
      const tooLarge = await errorOf(oversized);
      const otherRepository = await errorOf(publicImage.config.digest);
      // Assess
      expect([unknown.status, unknown.code]).toEqual([404, 'BLOB_UNKNOWN']);
      expect([layer.status, layer.code]).toEqual([405, 'UNSUPPORTED']);
      expect([notObject.status, notObject.code]).toEqual([405, 'UNSUPPORTED']);
      expect([tooLarge.status, tooLarge.code]).toEqual([400, 'SIZE_INVALID']);
      expect(tooLarge.detail).toMatchObject({ maxBytes: MAX_CONFIG_BYTES });
      // pub/tool's config is not linked into team/app: not readable through it.
      expect([otherRepository.status, otherRepository.code]).toEqual([404, 'BLOB_UNKNOWN']);
    });
  });
}

configStory('ocireg serve --auth', async () => {
  const server: RegistryServer = await startRegistryServer({ serveArgs: ['--auth'] });
  return {
    url: server.url,
    admin: (...args) => runOk(process.execPath, [OCIREG_CLI, ...args, '--data-dir', server.dataDir]),
    // lib/storage/fs/keys.ts: blobs/<alg>/<hex[0:2]>/<hex>.<uploadId>
    async corrupt({ digest }, bytes) {
      const [algorithm, hex] = digest.split(':') as [string, string];
      const folder = join(server.dataDir, 'blobs', algorithm, hex.slice(0, 2));
      const files = (await readdir(folder)).filter((file) => file.startsWith(hex));
      expect(files).toHaveLength(1);
      await writeFile(join(folder, files[0]!), bytes);
    },
    stop: () => server.stop(),
  };
});

configStory('dev:aws --auth', async () => {
  const dev: DevAws = await startDevAws({ auth: true, logLevel: 'WARN' });
  return {
    url: dev.url,
    admin: (...args) => runOk(process.execPath, [OCIREG_CLI, ...args, '--table', dev.names.table], { env: awsAdminEnv(dev.endpoints.dynamo) }),
    // The object a blob GET redirects to (path-style presigned URL: /<bucket>/<key>), written again with a checksum
    // of its own, so only the registry's digest check can tell.
    async corrupt({ name, digest, bearer }, bytes) {
      const res = await fetch(`${dev.url}/v2/${name}/blobs/${digest}`, { redirect: 'manual', headers: { authorization: `Bearer ${bearer}` } });
      expect(res.status).toBe(307);
      const [bucket, ...key] = decodeURIComponent(new URL(res.headers.get('location')!).pathname).slice(1).split('/');
      expect(bucket).toBe(dev.names.bucket);
      await dev.local.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key.join('/'), Body: bytes }));
    },
    stop: () => dev.stop(),
  };
});

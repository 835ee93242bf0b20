import { describe, expect, it } from 'vitest';
import { bytesOf } from '../../lib/registry/bytes.ts';
import { MAX_CONFIG_BYTES } from '../../lib/http/image-config.ts';
import { authRegistry } from '../support/auth-registry.ts';
import { blobOf, imageManifest, randomBlob, type Blob } from '../support/builders.ts';

/**
 * `GET /v2/<name>/_ocireg/config/<digest>`: the console's way to an image config where a blob GET is a redirect to
 * another origin. Over memory stores here; the S3 read (BlobStore.readBytes) is in the blob store contract, the same
 * answers over HTTP on `ocireg serve` and dev:aws in test/e2e/image-config.test.ts, and the console on dev:aws shows
 * a config read this way (test/console/console-aws.test.ts).
 */
describe('GET /v2/<name>/_ocireg/config/<digest>', () => {
  async function pushed() {
    const target = await authRegistry();
    const config = blobOf(JSON.stringify({ architecture: 'arm64', os: 'linux', config: { Entrypoint: ['/app'], Env: ['A=1'] } }));
    const layer = randomBlob(2000);
    const large = blobOf(JSON.stringify({ pad: 'x'.repeat(MAX_CONFIG_BYTES) }));
    const push = async (name: string, blobs: Blob[]) => {
      for (const blob of blobs) await target.registry.uploads.monolithic(name, blob.digest, bytesOf(blob.bytes), blob.size);
      const manifest = imageManifest(blobs[0]!, blobs.slice(1));
      await target.registry.putManifest(name, 'v1', bytesOf(manifest.bytes), manifest.mediaType, manifest.bytes.byteLength);
    };
    await push('team/app', [config, layer]);
    await push('team/big', [large, layer]);
    await push('secret/app', [config]);
    await push('pub/tool', [config]);
    await target.identities.setPublic('pub/**', true);
    const alice = await target.addUser('alice', [['team/*', 'pull']]);
    return { target, config, layer, large, alice };
  }

  it('answers the config bytes as stored, under pull permission of the repository', async () => {
    // Prepare
    const { target, config, alice } = await pushed();
    const token = await target.bearer(['repository:team/app:pull'], alice);
    // Act
    const answered = await target.call('GET', `/v2/team/app/_ocireg/config/${config.digest}`, token);
    // Assess
    expect(answered.status).toBe(200);
    expect(answered.headers['content-type']).toBe('application/json');
    expect(answered.headers['docker-content-digest']).toBe(config.digest);
    expect(answered.body).toEqual(config.bytes);
  });

  it('challenges anonymous callers and denies callers without pull on the repository, as a blob GET does', async () => {
    // Prepare
    const { target, config, alice } = await pushed();
    const path = `/v2/secret/app/_ocireg/config/${config.digest}`;
    // Act
    const anonymous = await target.call('GET', path, undefined);
    const token = await target.bearer(['repository:secret/app:pull'], alice);
    const denied = await target.call('GET', path, token);
    const asBlob = await target.call('GET', `/v2/secret/app/blobs/${config.digest}`, token);
    // Assess
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toContain('scope="repository:secret/app:pull"');
    expect([denied.status, denied.json().errors[0].code]).toEqual([asBlob.status, asBlob.json().errors[0].code]);
    expect(denied.status).toBe(403);
  });

  it('answers anonymous callers on a public repository', async () => {
    // Prepare
    const { target, config } = await pushed();
    const token = await target.bearer(['repository:pub/tool:pull']);
    // Act
    const answered = await target.call('GET', `/v2/pub/tool/_ocireg/config/${config.digest}`, token);
    // Assess
    expect(answered.status).toBe(200);
    expect(answered.json()).toMatchObject({ os: 'linux', architecture: 'arm64' });
  });

  it('refuses what is not an image config: unknown (404), not JSON (405), over 1 MiB (400, nothing read)', async () => {
    // Prepare
    const { target, config, layer, large, alice } = await pushed();
    const token = await target.bearer(['repository:team/app:pull', 'repository:team/big:pull'], alice);
    // Act
    const unknown = await target.call('GET', `/v2/team/app/_ocireg/config/sha256:${'0'.repeat(64)}`, token);
    const notJson = await target.call('GET', `/v2/team/app/_ocireg/config/${layer.digest}`, token);
    const oversized = await target.call('GET', `/v2/team/big/_ocireg/config/${large.digest}`, token);
    const elsewhere = await target.call('GET', `/v2/team/big/_ocireg/config/${config.digest}`, token);
    // Assess
    expect([unknown.status, unknown.json().errors[0].code]).toEqual([404, 'BLOB_UNKNOWN']);
    expect([notJson.status, notJson.json().errors[0].code]).toEqual([405, 'UNSUPPORTED']);
    expect([oversized.status, oversized.json().errors[0].code]).toEqual([400, 'SIZE_INVALID']);
    expect(oversized.json().errors[0].detail).toMatchObject({ size: large.size, maxBytes: MAX_CONFIG_BYTES });
    // A config of another repository is not readable through this one.
    expect([elsewhere.status, elsewhere.json().errors[0].code]).toEqual([404, 'BLOB_UNKNOWN']);
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevAws, type DevAws } from '../../bin/dev-aws.ts';
import { startContainerd, type Containerd } from '../support/containerd.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { sha256 } from '../support/digests.ts';
import { blobPath, buildRandomImage, MiB, randomTarball, sameFileBytes } from '../support/images.ts';
import { OCIREG_CLI } from '../support/registry-server.ts';
import { requireTools, runOk, runTool } from '../support/tools.ts';

/**
 * The proof of the AWS deployment without AWS: the production Lambda handler behind the emulated HTTP API
 * (10 MiB request, 6 MB event, 30 s), over DynamoDB Local and a strict s3rver (parts ≥ 5 MiB but the last,
 * ≤ 10,000 parts), driven by unmodified clients. Blob GETs redirect (307) to s3rver under the host name
 * `localhost` while the registry is 127.0.0.1, as S3's host differs from API Gateway's.
 */

let dev: DevAws;
let host: string;
let work: string;
let dockerd: Dockerd;
let containerd: Containerd;

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'docker', 'dockerd', 'containerd', 'ctr');
  work = await mkdtemp(join(tmpdir(), 'ocireg-aws-e2e-'));
  dev = await startDevAws({ logLevel: 'WARN' });
  host = new URL(dev.url).host;
  [dockerd, containerd] = await Promise.all([startDockerd({ insecureRegistries: [host] }), startContainerd()]);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([dockerd?.stop(), containerd?.stop()]);
  await dev?.stop();
  await rm(work, { recursive: true, force: true });
});

async function s3ObjectCount(): Promise<number> {
  const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const listed = await dev.local.s3.send(new ListObjectsV2Command({ Bucket: dev.names.bucket }));
  return listed.KeyCount ?? 0;
}

describe('emulated AWS deployment with real clients', () => {
  it('pushes an image whose layers fit one request with unmodified skopeo and pulls it back through S3 redirects', async () => {
    // Prepare
    const image = await buildRandomImage({ layout: join(work, 'small'), tag: 'v1', randomBytes: 3 * MiB });
    // Act
    await runOk('skopeo', ['copy', '--dest-tls-verify=false', image.ref, `docker://${host}/team/skopeo:v1`]);
    const back = join(work, 'small-back');
    await runOk('skopeo', ['copy', '--src-tls-verify=false', `docker://${host}/team/skopeo:v1`, `oci:${back}:v1`]);
    // Assess
    for (const blob of image.blobs) expect(await sameFileBytes(blobPath(image.layout, blob.digest), blobPath(back, blob.digest))).toBe(true);
    const layer = image.blobs.at(-1)!;
    const redirect = await fetch(`${dev.url}/v2/team/skopeo/blobs/${layer.digest}`, { redirect: 'manual' });
    expect(redirect.status).toBe(307);
    expect(new URL(redirect.headers.get('location')!).hostname).toBe('localhost');
    expect(redirect.headers.get('location')).toMatch(/X-Amz-Signature=/);
  });

  it('pushes with docker (one streamed PATCH) and pulls back the same image', async () => {
    const tarball = await randomTarball(join(work, 'docker.tar'), 3 * MiB);
    const ref = `${host}/team/docker:1`;
    await runOk('docker', ['import', tarball.path, ref], { env: dockerd.env });
    const id = (await runOk('docker', ['image', 'inspect', '--format', '{{.Id}}', ref], { env: dockerd.env })).stdout.trim();
    await runOk('docker', ['push', ref], { env: dockerd.env });
    await runOk('docker', ['rmi', ref], { env: dockerd.env });
    await runOk('docker', ['pull', ref], { env: dockerd.env });
    expect((await runOk('docker', ['image', 'inspect', '--format', '{{.Id}}', ref], { env: dockerd.env })).stdout.trim()).toBe(id);
  });

  it('pushes with ctr (one monolithic PUT ?digest=) and pulls back', async () => {
    const image = await buildRandomImage({ layout: join(work, 'ctr'), tag: 'v1', randomBytes: 2 * MiB });
    const archive = join(work, 'ctr.tar');
    const ref = `${host}/team/ctr:v1`;
    await runOk('skopeo', ['copy', image.ref, `oci-archive:${archive}:${ref}`]);
    const imported = await containerd.ctr(['images', 'import', '--all-platforms', archive], { namespace: 'push' });
    expect(imported.code, imported.stderr).toBe(0);
    const push = await containerd.ctr(['images', 'push', '--plain-http', ref], { namespace: 'push' });
    expect(push.code, push.stderr).toBe(0);
    const manifest = await fetch(`${dev.url}/v2/team/ctr/manifests/v1`, { headers: { accept: image.manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json' } });
    expect(manifest.status).toBe(200);
    expect(manifest.headers.get('docker-content-digest')).toBe(image.manifestDigest);
    const pull = await containerd.ctr(['images', 'pull', '--plain-http', ref], { namespace: 'pull' });
    expect(pull.code, pull.stderr).toBe(0);
  });

  it('pushes a 64 MiB layer as chunked PATCHes of at most 4 MiB and pulls it back bit-identical', async () => {
    const image = await buildRandomImage({ layout: join(work, 'big'), tag: 'v1', randomBytes: 64 * MiB });
    const pushed = await runTool(process.execPath, [OCIREG_CLI, 'push', image.ref, `${host}/team/big:v1`, '--plain-http', '--quiet']);
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stdout.trim()).toBe(image.manifestDigest);
    const back = join(work, 'big-back');
    await runOk('skopeo', ['copy', '--src-tls-verify=false', `docker://${host}/team/big:v1`, `oci:${back}:v1`]);
    const layer = image.blobs.reduce((a, b) => (a.size > b.size ? a : b));
    expect(layer.size).toBeGreaterThan(64 * MiB);
    expect(await sameFileBytes(blobPath(image.layout, layer.digest), blobPath(back, layer.digest))).toBe(true);
  });

  it('pushes a layer in hand-made Content-Range chunks and refuses an out-of-order one with 416', async () => {
    const bytes = Buffer.alloc(9 * MiB + 123);
    for (let i = 0; i < bytes.length; i += 4096) bytes.writeUInt32LE((i * 2654435761) >>> 0, i);
    const digest = sha256(bytes);
    const started = await fetch(`${dev.url}/v2/team/chunks/blobs/uploads/`, { method: 'POST' });
    expect(started.status).toBe(202);
    expect(started.headers.get('oci-chunk-max-length')).toBe(String(4 * MiB));
    let location = started.headers.get('location')!;
    const skipped = await fetch(`${dev.url}${location}`, { method: 'PATCH', body: bytes.subarray(MiB, 2 * MiB), headers: { 'content-range': `${MiB}-${2 * MiB - 1}` } });
    expect(skipped.status).toBe(416);
    for (let start = 0; start < bytes.length; start += 4 * MiB) {
      const end = Math.min(start + 4 * MiB, bytes.length) - 1;
      const response = await fetch(`${dev.url}${location}`, { method: 'PATCH', body: bytes.subarray(start, end + 1), headers: { 'content-range': `${start}-${end}`, 'content-type': 'application/octet-stream' } });
      expect(response.status, await response.clone().text()).toBe(202);
      expect(response.headers.get('range')).toBe(`0-${end}`);
      location = response.headers.get('location')!;
    }
    const done = await fetch(`${dev.url}${location}?digest=${digest}`, { method: 'PUT' });
    expect(done.status).toBe(201);
    const pulled = Buffer.from(await (await fetch(`${dev.url}/v2/team/chunks/blobs/${digest}`)).arrayBuffer());
    expect(sha256(pulled)).toBe(digest);
  });

  it('answers a too-large single PATCH with the explanatory 413 and leaves nothing behind', async () => {
    const before = await s3ObjectCount();
    const started = await fetch(`${dev.url}/v2/team/toolarge/blobs/uploads/`, { method: 'POST' });
    const location = started.headers.get('location')!;
    const response = await fetch(`${dev.url}${location}`, { method: 'PATCH', body: Buffer.alloc(4 * MiB + 1, 7) });
    expect(response.status).toBe(413);
    const error = (await response.json()).errors[0];
    expect(error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(error.message).toMatch(/ocireg push/);
    expect((await fetch(`${dev.url}${location}`)).headers.get('range')).toBe('0-0');
    expect(await s3ObjectCount()).toBe(before);
    const huge = await fetch(`${dev.url}${location}`, { method: 'PATCH', body: Buffer.alloc(11 * MiB, 7) });
    expect(huge.status).toBe(413);
    expect(await s3ObjectCount()).toBe(before);
  });
});


import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevAws, type DevAws } from '../../bin/dev-aws.ts';
import type { GatewayLogLine } from '../../lib/server/emulated-api-gateway.ts';
import { doctor, notPassed } from '../doctor/run-doctor.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { blobPath, buildRandomImage, MiB, randomTarball, sameFileBytes } from '../support/images.ts';
import { requireTools, runOk } from '../support/tools.ts';

/**
 * The `blobHeadRedirect` switch on dev:aws: blob HEADs are 307s to presigned s3rver HEAD URLs (host `localhost`,
 * as S3's host differs from API Gateway's), so a client's size comes from S3. Real clients must follow them:
 * skopeo and docker HEAD every blob before pushing it, and skip the upload when the HEAD says it exists.
 */

let dev: DevAws;
let host: string;
let work: string;
let dockerd: Dockerd;
const gatewayLog: GatewayLogLine[] = [];

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'docker', 'dockerd');
  work = await mkdtemp(join(tmpdir(), 'ocireg-head-redirect-'));
  dev = await startDevAws({ logLevel: 'WARN', blobHeadRedirect: true, accessLog: (line) => gatewayLog.push(line) });
  host = new URL(dev.url).host;
  dockerd = await startDockerd({ insecureRegistries: [host] });
}, 180_000);

afterAll(async () => {
  await dockerd?.stop();
  await dev?.stop();
  await rm(work, { recursive: true, force: true });
});

/** Blob HEADs the gateway answered with a 307 since `from` (an index into the access log). */
const redirectedHeads = (from: number) => gatewayLog.slice(from).filter((line) => line.method === 'HEAD' && line.path.includes('/blobs/') && line.status === 307);

describe('dev:aws --blob-head-redirect', () => {
  it('answers a blob HEAD with a 307 to a presigned S3 HEAD URL that gives the size, and refuses a GET on that URL', async () => {
    const image = await buildRandomImage({ layout: join(work, 'probe'), tag: 'v1', randomBytes: 1 * MiB });
    await runOk('skopeo', ['copy', '--dest-tls-verify=false', image.ref, `docker://${host}/team/probe:v1`]);
    const layer = image.blobs.reduce((a, b) => (a.size > b.size ? a : b));

    const head = await fetch(`${dev.url}/v2/team/probe/blobs/${layer.digest}`, { method: 'HEAD', redirect: 'manual' });
    const location = new URL(head.headers.get('location')!);
    const fromS3 = await fetch(location, { method: 'HEAD' });
    const getOnHeadUrl = await fetch(location);
    const missing = await fetch(`${dev.url}/v2/team/probe/blobs/sha256:${'0'.repeat(64)}`, { method: 'HEAD', redirect: 'manual' });

    expect(head.status).toBe(307);
    expect(head.headers.get('docker-content-digest')).toBe(layer.digest);
    expect(location.hostname).toBe('localhost');
    expect(location.port).toBe(new URL(dev.endpoints.s3).port);
    expect(fromS3.status).toBe(200);
    expect(fromS3.headers.get('content-length')).toBe(String(layer.size));
    expect(getOnHeadUrl.status).toBe(403);
    expect(missing.status).toBe(404);
  });

  it('skopeo pushes, finds every blob by HEAD through the redirect on a second push, and pulls back identical bytes', async () => {
    const image = await buildRandomImage({ layout: join(work, 'skopeo'), tag: 'v1', randomBytes: 3 * MiB });
    await runOk('skopeo', ['copy', '--dest-tls-verify=false', image.ref, `docker://${host}/team/skopeo:v1`]);
    const before = gatewayLog.length;

    await runOk('skopeo', ['copy', '--dest-tls-verify=false', image.ref, `docker://${host}/team/skopeo:v2`]);
    const uploadsOnSecondPush = gatewayLog.slice(before).filter((line) => line.method === 'POST' && line.path.endsWith('/blobs/uploads/'));
    const back = join(work, 'skopeo-back');
    await runOk('skopeo', ['copy', '--src-tls-verify=false', `docker://${host}/team/skopeo:v2`, `oci:${back}:v2`]);

    expect(redirectedHeads(before).length).toBeGreaterThanOrEqual(image.blobs.length - 1);
    expect(uploadsOnSecondPush).toEqual([]);
    for (const blob of image.blobs) expect(await sameFileBytes(blobPath(image.layout, blob.digest), blobPath(back, blob.digest))).toBe(true);
  });

  it('docker pushes, sees its layer exist through the redirect on a second push, and pulls back the same image', async () => {
    const tarball = await randomTarball(join(work, 'docker.tar'), 3 * MiB);
    const ref = `${host}/team/docker:1`;
    const again = `${host}/team/docker:2`;
    await runOk('docker', ['import', tarball.path, ref], { env: dockerd.env });
    const id = (await runOk('docker', ['image', 'inspect', '--format', '{{.Id}}', ref], { env: dockerd.env })).stdout.trim();
    await runOk('docker', ['push', ref], { env: dockerd.env });
    await runOk('docker', ['tag', ref, again], { env: dockerd.env });
    const before = gatewayLog.length;

    const second = await runOk('docker', ['push', again], { env: dockerd.env });
    await runOk('docker', ['rmi', ref, again], { env: dockerd.env });
    await runOk('docker', ['pull', again], { env: dockerd.env });

    expect(second.stdout).toMatch(/already exists/i);
    expect(redirectedHeads(before).length).toBeGreaterThanOrEqual(1);
    expect((await runOk('docker', ['image', 'inspect', '--format', '{{.Id}}', again], { env: dockerd.env })).stdout.trim()).toBe(id);
  });

  it('passes ocireg doctor, its blob HEAD rows following the 307 to S3 for the size', async () => {
    const { code, report, row } = await doctor(dev.url);

    expect(code, notPassed(report).join('\n')).toBe(0);
    expect(row('blob-head').observed).toMatch(/^307 → 200 \(via http:\/\/localhost:\d+\/.*\), .*Content-Length: \d+/i);
    expect(row('blob-head-large').observed).toMatch(/^307 → 200 .*Content-Length: 12582912/i);
  });
});

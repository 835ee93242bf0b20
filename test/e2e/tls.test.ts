import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../support/digests.ts';
import { blobPath, buildRandomImage, MiB, readLayoutImage, sameFileBytes, type LayoutImage } from '../support/images.ts';
import { startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { describeFailure, requireTools, runOk, runTool } from '../support/tools.ts';

/**
 * `ocireg serve --tls-cert --tls-key` with a self-signed certificate for 127.0.0.1/localhost: skopeo pushes and
 * pulls over verified HTTPS with the certificate as its CA (and is refused without it), and node reads the
 * registry with the CA passed per request (`https.request({ ca })`, not the process-wide NODE_EXTRA_CA_CERTS).
 */

let work: string;
let certDir: string;
let ca: Buffer;
let server: RegistryServer;
let image: LayoutImage;

interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** GET over https, trusting `ca` only (or the default roots when absent). */
function httpsGet(url: string, options: { ca?: Buffer; accept?: string } = {}): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(url, { method: 'GET', ...(options.ca ? { ca: options.ca } : {}), headers: options.accept ? { accept: options.accept } : {} }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

beforeAll(async () => {
  await requireTools('openssl', 'skopeo', 'umoci', 'tar');
  work = await mkdtemp(join(tmpdir(), 'ocireg-tls-'));
  const cert = join(work, 'cert.pem');
  const key = join(work, 'key.pem');
  await runOk('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  ca = await readFile(cert);
  // containers/image reads *.crt in a cert dir as CA certificates.
  certDir = join(work, 'certs');
  await mkdir(certDir);
  await copyFile(cert, join(certDir, 'ca.crt'));
  server = await startRegistryServer({ serveArgs: ['--tls-cert', cert, '--tls-key', key] });
  image = await buildRandomImage({ layout: join(work, 'src'), tag: 'v1', randomBytes: 4 * MiB });
});

afterAll(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('ocireg serve over TLS', () => {
  it('answers /v2/ over https to a client trusting the certificate and fails verification for one that does not', async () => {
    // Prepare
    expect(server.url).toBe(`https://127.0.0.1:${server.port}`);

    // Act
    const trusted = await httpsGet(`${server.url}/v2/`, { ca });
    const untrusted = await httpsGet(`${server.url}/v2/`).then(
      () => undefined,
      (error: NodeJS.ErrnoException) => error.code,
    );
    const plain = await fetch(`http://${server.host}/v2/`).then(
      (response) => response.status,
      () => 'no HTTP answer',
    );

    // Assess
    expect(trusted.status).toBe(200);
    expect(trusted.headers['docker-distribution-api-version']).toBe('registry/2.0');
    expect(untrusted).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(plain).not.toBe(200);
  });

  it('skopeo pushes and pulls over verified https with --dest-cert-dir / --src-cert-dir, and refuses without the CA', async () => {
    // Prepare
    const target = `docker://${server.host}/team/tls:1`;
    const back = join(work, 'back');

    // Act
    const push = await runTool('skopeo', ['copy', '--dest-cert-dir', certDir, image.ref, target]);
    const unverified = await runTool('skopeo', ['inspect', target]);
    const pull = await runTool('skopeo', ['copy', '--src-cert-dir', certDir, target, `oci:${back}:v1`]);
    const manifest = await httpsGet(`${server.url}/v2/team/tls/manifests/1`, { ca, accept: 'application/vnd.oci.image.manifest.v1+json' });

    // Assess
    expect(push.code, describeFailure(push)).toBe(0);
    expect(unverified.code).not.toBe(0);
    expect(unverified.stderr).toMatch(/certificate/);
    expect(pull.code, describeFailure(pull)).toBe(0);
    const copied = await readLayoutImage(back, 'v1');
    expect(copied.manifestDigest).toBe(image.manifestDigest);
    for (const blob of image.blobs) expect(await sameFileBytes(blobPath(image.layout, blob.digest), blobPath(back, blob.digest))).toBe(true);
    expect(manifest.status).toBe(200);
    expect(manifest.headers['docker-content-digest']).toBe(image.manifestDigest);
    expect(sha256(manifest.body)).toBe(image.manifestDigest);
    const uploads = server.requests().filter((line) => line.name === 'team/tls' && line.operation === 'upload.put' && line.status === 201);
    expect(uploads.length).toBe(image.blobs.length);
  });
});

import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRandomImage, MiB, readLayoutImage, type LayoutImage } from '../support/images.ts';
import { startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { describeFailure, requireTools, runOk, runTool } from '../support/tools.ts';

/**
 * `ocireg serve --tls-client-ca CA.pem`: mutual TLS. A test CA signs the server certificate (IP 127.0.0.1) and a
 * client certificate; a second CA signs a foreign one. node and skopeo (cert dir with ca.crt, client.cert,
 * client.key, as docker's certs.d/<host:port>/) push and pull with the client certificate and fail the handshake
 * without it or with the foreign one.
 *
 * docker itself is not here: dockerd (20.10) reads certs.d only for registries it deems secure, and every
 * 127.0.0.0/8 address is insecure to it whatever the flags; it refuses `[::1]:PORT` as a reference, and no name on
 * this machine resolves to ::1 alone. Tried: with certs.d/127.0.0.1:PORT/client.cert it never sends the certificate
 * ("tls: certificate required").
 */

let work: string;
let server: RegistryServer;
let ca: Buffer;
let image: LayoutImage;
/** skopeo cert dirs: the CA and our client pair; the CA only; the CA and a pair signed by another CA. */
let withClient: string;
let caOnly: string;
let foreignClient: string;

/** A key and a certificate for `subject` signed by `issuer` (CA key and cert), with these extensions. */
async function signed(dir: string, name: string, subject: string, issuer: { cert: string; key: string }, extensions: string): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, extensions);
  await runOk('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', subject]);
  await runOk('openssl', ['x509', '-req', '-in', csr, '-CA', issuer.cert, '-CAkey', issuer.key, '-CAcreateserial', '-days', '2', '-out', cert, '-extfile', ext]);
  return { cert, key };
}

async function certificateAuthority(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  await runOk('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-keyout', key, '-out', cert, '-subj', `/CN=${name}`]);
  return { cert, key };
}

/** A cert dir as containers/image and docker read it: *.crt CAs, client.cert + client.key. */
async function certDir(path: string, caCert: string, client?: { cert: string; key: string }): Promise<string> {
  await mkdir(path, { recursive: true });
  await copyFile(caCert, join(path, 'ca.crt'));
  if (client) {
    await copyFile(client.cert, join(path, 'client.cert'));
    await copyFile(client.key, join(path, 'client.key'));
  }
  return path;
}

/** GET /v2/ trusting the test CA, with a client pair or none: the status, or the error code of a failed handshake. */
function probe(client?: { cert: string; key: string }): Promise<number | string> {
  return (async () => {
    const pair = client ? { cert: await readFile(client.cert), key: await readFile(client.key) } : {};
    return new Promise<number | string>((resolve) => {
      const request = httpsRequest(`${server.url}/v2/`, { ca, ...pair }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      request.end();
    });
  })();
}

let clientPair: { cert: string; key: string };
let foreignPair: { cert: string; key: string };

beforeAll(async () => {
  await requireTools('openssl', 'skopeo', 'umoci', 'tar');
  work = await mkdtemp(join(tmpdir(), 'ocireg-mtls-'));
  const testCa = await certificateAuthority(work, 'ocireg-test-ca');
  const otherCa = await certificateAuthority(work, 'other-ca');
  const serverPair = await signed(work, 'server', '/CN=127.0.0.1', testCa, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  clientPair = await signed(work, 'client', '/CN=ci-runner', testCa, 'extendedKeyUsage=clientAuth\n');
  foreignPair = await signed(work, 'foreign', '/CN=stranger', otherCa, 'extendedKeyUsage=clientAuth\n');
  ca = await readFile(testCa.cert);
  withClient = await certDir(join(work, 'with-client'), testCa.cert, clientPair);
  caOnly = await certDir(join(work, 'ca-only'), testCa.cert);
  foreignClient = await certDir(join(work, 'foreign-client'), testCa.cert, foreignPair);
  server = await startRegistryServer({ serveArgs: ['--tls-cert', serverPair.cert, '--tls-key', serverPair.key, '--tls-client-ca', testCa.cert] });
  image = await buildRandomImage({ layout: join(work, 'src'), tag: 'v1', randomBytes: 2 * MiB });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('ocireg serve --tls-client-ca (mutual TLS)', () => {
  it('answers a client with a certificate from the CA; the handshake fails without one or with a foreign one', async () => {
    // Act
    const accepted = await probe(clientPair);
    const missing = await probe();
    const foreign = await probe(foreignPair);

    // Assess
    expect(server.url).toBe(`https://127.0.0.1:${server.port}`);
    expect(accepted).toBe(200);
    expect(missing).not.toBe(200);
    expect(typeof missing).toBe('string');
    expect(foreign).not.toBe(200);
    expect(typeof foreign).toBe('string');
    expect(server.requests().filter((line) => line.path === '/v2/')).toHaveLength(1);
  });

  it('skopeo pushes and pulls with the client certificate, and fails without it or with a foreign one', async () => {
    // Prepare
    const target = `docker://${server.host}/team/mtls:1`;
    const back = join(work, 'back');

    // Act
    const push = await runTool('skopeo', ['copy', '--dest-cert-dir', withClient, image.ref, target]);
    const pull = await runTool('skopeo', ['copy', '--src-cert-dir', withClient, target, `oci:${back}:v1`]);
    const noClient = await runTool('skopeo', ['inspect', '--cert-dir', caOnly, target]);
    const foreign = await runTool('skopeo', ['inspect', '--cert-dir', foreignClient, target]);
    const pushWithout = await runTool('skopeo', ['copy', '--dest-cert-dir', caOnly, image.ref, `docker://${server.host}/team/mtls:2`]);

    // Assess
    expect(push.code, describeFailure(push)).toBe(0);
    expect(pull.code, describeFailure(pull)).toBe(0);
    expect((await readLayoutImage(back, 'v1')).manifestDigest).toBe(image.manifestDigest);
    for (const refused of [noClient, foreign, pushWithout]) {
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/certificate|tls|handshake/i);
    }
    expect(server.requests().some((line) => line.name === 'team/mtls' && String(line.path).includes('/manifests/2'))).toBe(false);
  });
});

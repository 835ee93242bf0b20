import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd } from '../support/containerd.ts';
import { startDockerd, type Dockerd } from '../support/dockerd.ts';
import { startFlakyForwarder, type FlakyForwarder } from '../support/flaky-forwarder.ts';
import { OCIREG_CLI, ociregProxyCommand, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { requireTools, runTool as run } from '../support/tools.ts';

/**
 * Large layers against a registry with the serverless body limit (`ocireg serve --max-chunk-length 4194304`,
 * 413 over it, as API Gateway + Lambda): `ocireg push` and unmodified clients through `ocireg proxy` succeed,
 * the same clients directly fail, and an interrupted upload resumes where the registry says it stands.
 */

const LIMIT = 4 * 1024 * 1024;
const MiB = 1024 * 1024;

let work: string;
let server: RegistryServer;
/** Records every request between the proxy and the server, with its body size. */
let recorder: FlakyForwarder;
let proxy: RegistryServer;
let dockerd: Dockerd | undefined;

interface BigImage {
  layout: string;
  manifestDigest: string;
  layer: { digest: string; size: number };
}

/**
 * An OCI layout made by umoci whose only layer holds 64 MiB of fresh random bytes: each test pushes content the
 * registry has never seen (no HEAD hit, no automatic mount, no hit in skopeo's blob info cache).
 */
async function bigImage(name: string): Promise<BigImage> {
  const layout = join(work, name);
  const bundle = join(work, `${name}-bundle`);
  for (const args of [['init', '--layout', layout], ['new', '--image', `${layout}:big`], ['unpack', '--rootless', '--image', `${layout}:big`, bundle]]) {
    const result = await run('umoci', args);
    expect(result.code, result.stderr).toBe(0);
  }
  await writeFile(join(bundle, 'rootfs', 'random.bin'), randomBytes(64 * MiB));
  const repack = await run('umoci', ['repack', '--image', `${layout}:big`, bundle]);
  expect(repack.code, repack.stderr).toBe(0);
  await rm(bundle, { recursive: true, force: true });
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> };
  const manifestDigest = index.manifests.find((entry) => entry.annotations['org.opencontainers.image.ref.name'] === 'big')!.digest;
  const manifest = JSON.parse(await readFile(join(layout, 'blobs', 'sha256', manifestDigest.slice(7)), 'utf8')) as { layers: Array<{ digest: string; size: number }> };
  const layer = manifest.layers[0]!;
  expect(layer.size).toBeGreaterThan(64 * MiB);
  return { layout, manifestDigest, layer };
}

const ocireg = (args: string[], env: NodeJS.ProcessEnv = {}) => run(process.execPath, [OCIREG_CLI, ...args], { env });
const logOf = (process: RegistryServer) => process.requests();

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'docker', 'dockerd', 'tar');
  work = await mkdtemp(join('/tmp', 'oll-'));
  server = await startRegistryServer({ dataDir: join(work, 'data'), serveArgs: ['--max-chunk-length', String(LIMIT)] });
  recorder = await startFlakyForwarder(server.url);
  proxy = await startRegistryServer({ command: ociregProxyCommand(recorder.url) });
}, 60_000);

afterAll(async () => {
  await dockerd?.stop();
  await proxy?.stop();
  await recorder?.close();
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true }).catch(() => undefined);
}, 60_000);

async function sameBlob(image: BigImage, otherLayout: string): Promise<boolean> {
  const path = (dir: string) => join(dir, 'blobs', 'sha256', image.layer.digest.slice(7));
  return (await run('cmp', [path(image.layout), path(otherLayout)])).code === 0;
}

describe('large layers against a registry that refuses request bodies over 4 MiB', () => {
  it('ocireg push uploads a 64 MiB layer in chunks of at most 4 MiB; skopeo pulls it back identical', async () => {
    // Prepare
    const image = await bigImage('pushed');
    const { layer } = image;

    // Act
    const pushed = await ocireg(['push', `oci:${image.layout}:big`, `${server.host}/team/big:1`, '--plain-http']);

    // Assess
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stdout.trim()).toBe(image.manifestDigest);
    expect(pushed.stderr).toMatch(/2 blob\(s\) uploaded/);
    const requests = logOf(server).filter((line) => line.name === 'team/big');
    expect(requests.filter((line) => line.status === 413)).toEqual([]);
    expect(requests.filter((line) => line.method === 'PATCH').length).toBeGreaterThanOrEqual(Math.ceil(layer.size / LIMIT));
    const back = join(work, 'back-push');
    const pulled = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${server.host}/team/big:1`, `oci:${back}:back`]);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(await sameBlob(image, back)).toBe(true);
    process.stderr.write(`[large-layers] ocireg push of ${(layer.size / MiB).toFixed(1)} MiB: ${pushed.ms} ms\n`);
  }, 180_000);

  it('skopeo pushes the same layout directly only to fail with 413, and through ocireg proxy succeeds', async () => {
    // Prepare
    const image = await bigImage('skopeo');
    const { layer } = image;

    // Act
    const direct = await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${image.layout}:big`, `docker://${server.host}/team/direct:1`]);
    const before = recorder.requests.length;
    const viaProxy = await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${image.layout}:big`, `docker://${proxy.host}/team/viaproxy:1`]);

    // Assess
    expect(direct.code).not.toBe(0);
    // The server answers 413 as soon as the body passes the limit and closes the connection: skopeo reports the
    // 413's message or, when it was still writing, the broken pipe. The server log says which request it refused.
    expect(direct.stderr).toMatch(/exceeds this registry's limit of 4194304 bytes|broken pipe|connection reset/);
    expect(logOf(server).some((line) => line.name === 'team/direct' && line.status === 413)).toBe(true);
    expect(viaProxy.code, viaProxy.stderr).toBe(0);
    const upstream = recorder.requests.slice(before);
    expect(Math.max(...upstream.map((request) => request.bytes))).toBeLessThanOrEqual(LIMIT);
    expect(upstream.filter((request) => request.method === 'PATCH').length).toBeGreaterThanOrEqual(Math.ceil(layer.size / LIMIT));
    expect(upstream.some((request) => request.status === 413)).toBe(false);
    const back = join(work, 'back-proxy');
    const pulled = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${proxy.host}/team/viaproxy:1`, `oci:${back}:back`]);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(await sameBlob(image, back)).toBe(true);
    process.stderr.write(`[large-layers] skopeo copy of ${(layer.size / MiB).toFixed(1)} MiB through ocireg proxy: ${viaProxy.ms} ms (${(layer.size / 1e6 / (viaProxy.ms / 1000)).toFixed(1)} MB/s)\n`);
  }, 180_000);

  it('docker pushes a 12 MiB layer through ocireg proxy and pulls it back; ocireg push reads docker-daemon: images', async () => {
    // Prepare: an image imported from a tarball of random bytes
    dockerd = await startDockerd({ insecureRegistries: [`localhost:${proxy.port}`, `localhost:${server.port}`] });
    const context = join(work, 'docker-context');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'payload.bin'), randomBytes(12 * MiB));
    expect((await run('tar', ['-C', context, '-cf', join(work, 'rootfs.tar'), '.'])).code).toBe(0);
    const image = `localhost:${proxy.port}/team/dock:1`;
    const imported = await dockerd.docker(['import', join(work, 'rootfs.tar'), image]);
    expect(imported.code, imported.stderr).toBe(0);
    const id = (await dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', image])).stdout.trim();

    // Act: docker through the proxy
    const before = recorder.requests.length;
    const push = await dockerd.docker(['push', image]);
    expect(push.code, push.stderr + push.stdout).toBe(0);
    expect((await dockerd.docker(['rmi', image])).code).toBe(0);
    const pull = await dockerd.docker(['pull', image]);

    // Assess
    expect(pull.code, pull.stderr).toBe(0);
    expect((await dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', image])).stdout.trim()).toBe(id);
    const upstream = recorder.requests.slice(before);
    expect(Math.max(...upstream.map((request) => request.bytes))).toBeLessThanOrEqual(LIMIT);
    expect(upstream.filter((request) => request.method === 'PATCH').length).toBeGreaterThanOrEqual(3);
    expect(logOf(proxy).some((line) => line.method === 'PATCH' && typeof line.chunks === 'number' && line.chunks >= 3)).toBe(true);

    // Act: ocireg push from the daemon, straight to the limited server; docker pulls it from there
    const fromDaemon = await ocireg(['push', `docker-daemon:${image}`, `${server.host}/team/fromdaemon:1`, '--plain-http'], dockerd.env);
    expect(fromDaemon.code, fromDaemon.stderr).toBe(0);
    const again = `localhost:${server.port}/team/fromdaemon:1`;
    const pulledAgain = await dockerd.docker(['pull', again]);
    expect(pulledAgain.code, pulledAgain.stderr).toBe(0);
    expect((await dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', again])).stdout.trim()).toBe(id);
  }, 300_000);

  it('containerd (ctr) pushes a 64 MiB layer as one monolithic PUT through ocireg proxy', async () => {
    // Prepare: a private containerd with the image imported from an OCI archive
    await requireTools('containerd', 'ctr');
    const image = await bigImage('ctr');
    const reference = `${proxy.host}/team/ctr:1`;
    const archive = join(work, 'ctr.tar');
    const packed = await run('skopeo', ['copy', `oci:${image.layout}:big`, `oci-archive:${archive}:${reference}`]);
    expect(packed.code, packed.stderr).toBe(0);
    const containerd = await startContainerd();
    try {
      const imported = await containerd.ctr(['images', 'import', '--all-platforms', archive]);
      expect(imported.code, imported.stderr).toBe(0);
      const before = recorder.requests.length;

      // Act
      const push = await containerd.ctr(['images', 'push', '--plain-http', reference, reference]);

      // Assess: the proxy received whole-blob PUTs and sent chunks of at most 4 MiB
      expect(push.code, push.stderr).toBe(0);
      expect(logOf(proxy).some((line) => line.method === 'PUT' && line.bytes === image.layer.size && (line.chunks as number) >= 16)).toBe(true);
      const upstream = recorder.requests.slice(before);
      expect(Math.max(...upstream.map((request) => request.bytes))).toBeLessThanOrEqual(LIMIT);
      const back = join(work, 'back-ctr');
      const pulled = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${server.host}/team/ctr:1`, `oci:${back}:back`]);
      expect(pulled.code, pulled.stderr).toBe(0);
      expect(await sameBlob(image, back)).toBe(true);
    } finally {
      await containerd.stop();
    }
  }, 180_000);

  it('an upload interrupted mid-chunk resumes from the Range the registry reports, not from zero', async () => {
    // Prepare: the fifth PATCH loses its connection half-way
    const image = await bigImage('resumed');
    const { layer } = image;
    const flaky = await startFlakyForwarder(server.url, { failPatch: 5 });
    try {
      // Act
      const pushed = await ocireg(['push', `oci:${image.layout}:big`, `${flaky.host}/team/resumed:1`, '--plain-http']);

      // Assess
      expect(pushed.code, pushed.stderr).toBe(0);
      expect(pushed.stderr).toContain(`resuming at byte ${4 * LIMIT} of ${layer.size}`);
      const bigUpload = flaky.requests.filter((request) => request.method === 'PATCH' && request.bytes > 1000);
      expect(bigUpload[4]).toMatchObject({ contentRange: `${4 * LIMIT}-${5 * LIMIT - 1}`, status: 'reset' });
      expect(bigUpload[5]).toMatchObject({ contentRange: `${4 * LIMIT}-${5 * LIMIT - 1}`, status: 202 });
      expect(bigUpload.filter((request) => request.contentRange?.startsWith('0-'))).toHaveLength(1);
      expect(flaky.requests.filter((request) => request.method === 'POST')).toHaveLength(2); // the layer and the config, once each
      const sent = bigUpload.reduce((sum, request) => sum + request.bytes, 0);
      expect(sent).toBeLessThan(layer.size + LIMIT);
      const back = join(work, 'back-resumed');
      const pulled = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${server.host}/team/resumed:1`, `oci:${back}:back`]);
      expect(pulled.code, pulled.stderr).toBe(0);
      expect(await sameBlob(image, back)).toBe(true);
    } finally {
      await flaky.close();
    }
  }, 180_000);
});

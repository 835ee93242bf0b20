import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { imageManifest, randomBlob, type Blob, type ManifestDoc } from '../support/builders.ts';
import { OCIREG_CLI, startRegistryServer } from '../support/registry-server.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { runTool } from '../support/tools.ts';

const dirs = tempDirs('ocireg-gc-cli-');
afterAll(() => dirs.cleanUp());

const ocireg = (...args: string[]) => runTool(process.execPath, [OCIREG_CLI, ...args], { timeoutMs: 60_000 });

interface HttpImage {
  name: string;
  manifest: ManifestDoc;
  blobs: Blob[];
}

function httpImage(name: string, config: Blob, layers: Blob[]): HttpImage {
  return { name, manifest: imageManifest(config, layers), blobs: [config, ...layers] };
}

/** Pushes over HTTP as a monolithic-upload client does (POST ?digest= with the bytes, then PUT the manifest). */
async function pushHttp(url: string, image: HttpImage, tag: string): Promise<void> {
  for (const blob of image.blobs) {
    const response = await fetch(`${url}/v2/${image.name}/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', body: new Uint8Array(blob.bytes), headers: { 'content-type': 'application/octet-stream' } });
    expect(response.status).toBe(201);
  }
  const response = await fetch(`${url}/v2/${image.name}/manifests/${tag}`, { method: 'PUT', body: new Uint8Array(image.manifest.bytes), headers: { 'content-type': image.manifest.mediaType } });
  expect(response.status).toBe(201);
}

async function expectPullsIdentical(url: string, image: HttpImage, tag: string): Promise<void> {
  const manifest = Buffer.from(await (await fetch(`${url}/v2/${image.name}/manifests/${tag}`, { headers: { accept: image.manifest.mediaType } })).arrayBuffer());
  expect(manifest.equals(image.manifest.bytes)).toBe(true);
  for (const blob of image.blobs) {
    const bytes = Buffer.from(await (await fetch(`${url}/v2/${image.name}/blobs/${blob.digest}`)).arrayBuffer());
    expect(bytes.equals(blob.bytes)).toBe(true);
  }
}

async function blobFiles(dataDir: string): Promise<string[]> {
  const entries = await readdir(join(dataDir, 'blobs'), { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
}

describe('ocireg gc', () => {
  it('runs inside a serving `ocireg serve`: the dry run lists what the run removes, and the files are gone from disk', async () => {
    // Prepare
    const dataDir = await dirs.make();
    const server = await startRegistryServer({ dataDir });
    try {
      const shared = randomBlob(5000);
      const goneBlobs = [randomBlob(80), randomBlob(7000)];
      const gone = httpImage('team/app', goneBlobs[0]!, [shared, goneBlobs[1]!]);
      const kept = httpImage('team/app', randomBlob(80), [shared, randomBlob(6000)]);
      await pushHttp(server.url, gone, 'gone');
      await pushHttp(server.url, kept, 'kept');
      expect((await fetch(`${server.url}/v2/team/app/manifests/${gone.manifest.digest}`, { method: 'DELETE' })).status).toBe(202);
      const filesBefore = await blobFiles(dataDir);
      // Act
      const dry = await ocireg('gc', '--data-dir', dataDir, '--grace', '0s', '--dry-run');
      const filesAfterDry = await blobFiles(dataDir);
      const real = await ocireg('gc', '--data-dir', dataDir, '--grace', '0s');
      const json = await ocireg('gc', '--data-dir', dataDir, '--grace', '0s', '--json');
      // Assess
      expect(dry.code, dry.stderr).toBe(0);
      expect(real.code, real.stderr).toBe(0);
      expect(filesAfterDry).toEqual(filesBefore);
      const removals = (output: string) => output.trim().split('\n').slice(0, -1).sort();
      expect(removals(real.stdout)).toEqual(removals(dry.stdout));
      expect(removals(real.stdout)).toEqual(
        [
          `blob\t${goneBlobs[0]!.digest}\t80`,
          `blob\t${goneBlobs[1]!.digest}\t7000`,
          `link\tteam/app@${goneBlobs[0]!.digest}\t80`,
          `link\tteam/app@${goneBlobs[1]!.digest}\t7000`,
        ].sort(),
      );
      expect(dry.stdout.trim().split('\n').at(-1)).toMatch(/^would free 7080 bytes/);
      expect(real.stdout.trim().split('\n').at(-1)).toMatch(/^freed 7080 bytes/);
      const filesAfter = await blobFiles(dataDir);
      expect(filesAfter).toHaveLength(filesBefore.length - 2);
      for (const blob of goneBlobs) expect(filesAfter.some((file) => file.startsWith(blob.digest.slice(7)))).toBe(false);
      expect(JSON.parse(json.stdout)).toMatchObject({ dryRun: false, removals: [], bytesFreed: 0 });
      await expectPullsIdentical(server.url, kept, 'kept');
    } finally {
      await server.stop();
    }
  });

  it('applies the retention rules of ocireg policy before the sweep: the dry run lists what the run removes; protected tags and the last K rollback targets stay', async () => {
    // Prepare: v1 (protected), old, and latest pushed three times; keep the newest tag and each kept tag's last change
    const dataDir = await dirs.make();
    const server = await startRegistryServer({ dataDir });
    const gcJson = async (...args: string[]) => {
      const run = await ocireg('gc', '--data-dir', dataDir, '--grace', '0s', '--json', ...args);
      expect(run.code, run.stderr).toBe(0);
      return JSON.parse(run.stdout) as { dryRun: boolean; removals: Array<Record<string, unknown>>; bytesFreed: number };
    };
    const shared = randomBlob(3000);
    const [v1, old, first, second, third] = [[shared], [shared, randomBlob(4000)], [randomBlob(100)], [randomBlob(100)], [randomBlob(100)]].map((layers) => httpImage('team/app', randomBlob(60), layers)) as [HttpImage, HttpImage, HttpImage, HttpImage, HttpImage];
    let alone: { removals: Array<Record<string, unknown>> } | undefined;
    try {
      await pushHttp(server.url, v1, 'v1');
      await pushHttp(server.url, old, 'old');
      for (const image of [first, second, third]) await pushHttp(server.url, image, 'latest');
      const policy = await ocireg('policy', 'set', 'team/*', '--keep-last', '1', '--protect', 'v*', '--expire-untagged', '1s', '--keep-history', '1', '--data-dir', dataDir);
      expect(policy.code, policy.stderr).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const filesBefore = await blobFiles(dataDir);
      // Act: through the serving process
      const dry = await gcJson('--dry-run');
      const filesAfterDry = await blobFiles(dataDir);
      const real = await gcJson();
      // Assess: the same list, tags and manifests with their reasons first
      const sorted = (removals: Array<Record<string, unknown>>) => removals.map((removal) => JSON.stringify(removal)).sort();
      expect(sorted(real.removals)).toEqual(sorted(dry.removals));
      expect(filesAfterDry).toEqual(filesBefore);
      const retained = real.removals.filter((removal) => removal.kind === 'tag' || removal.kind === 'manifest').map((removal) => `${removal.kind} ${removal.tag ?? removal.digest}`);
      expect(retained.sort()).toEqual(['tag old', `manifest ${old.manifest.digest}`, `manifest ${first.manifest.digest}`].sort());
      const freed = [...old.blobs.filter((blob) => blob !== shared), ...first.blobs];
      expect(real.removals.filter((removal) => removal.kind === 'blob').map((removal) => removal.digest).sort()).toEqual(freed.map((blob) => blob.digest).sort());
      const filesAfter = await blobFiles(dataDir);
      for (const blob of freed) expect(filesAfter.some((file) => file.startsWith(blob.digest.slice(7)))).toBe(false);
      await expectPullsIdentical(server.url, v1, 'v1');
      await expectPullsIdentical(server.url, third, 'latest');
      await expectPullsIdentical(server.url, second, second.manifest.digest);
      expect((await fetch(`${server.url}/v2/team/app/manifests/old`)).status).toBe(404);
      expect((await fetch(`${server.url}/v2/team/app/manifests/${first.manifest.digest}`)).status).toBe(404);
      const history = await ocireg('history', `${server.host}/team/app:old`, '--json');
      expect(JSON.parse(history.stdout)[0]).toMatchObject({ action: 'deleted', previous: old.manifest.digest, actor: { subject: 'gc' } });
    } finally {
      await server.stop();
    }
    // Act: nothing serves the dir; without --protect, v1 is older than latest and goes too
    await ocireg('policy', 'set', 'team/*', '--keep-last', '1', '--data-dir', dataDir);
    alone = await gcJson();
    // Assess
    expect(alone.removals.filter((removal) => removal.kind === 'tag')).toEqual([{ kind: 'tag', name: 'team/app', tag: 'v1', digest: v1.manifest.digest, reason: 'not among the 1 most recently pushed tags' }]);
    expect(alone.removals).toContainEqual({ kind: 'manifest', name: 'team/app', digest: v1.manifest.digest, bytes: v1.manifest.bytes.byteLength, reason: 'its tags expired' });
  });

  it('runs in its own process when nothing serves the data dir, and a second server on a served dir refuses to start', async () => {
    // Prepare
    const dataDir = await dirs.make();
    const server = await startRegistryServer({ dataDir });
    const image = httpImage('solo/app', randomBlob(50), []);
    await pushHttp(server.url, image, 'v1');
    const second = await ocireg('serve', '--port', '0', '--data-dir', dataDir);
    await server.stop();
    expect((await fetch(`http://127.0.0.1:${server.port}/v2/`).catch(() => undefined))?.status).toBeUndefined();
    // Act: nothing serves it now
    const alone = await ocireg('gc', '--data-dir', dataDir, '--grace', '0s');
    // Assess
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/another ocireg process owns/);
    expect(alone.code, alone.stderr).toBe(0);
    expect(alone.stdout.trim()).toBe('freed 0 bytes (0 B) in 0 removals');
    await expect(access(join(dataDir, 'control.sock'))).rejects.toThrow();
  });
});

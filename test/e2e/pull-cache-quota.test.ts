import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distributionRegistry, type DistributionRegistry } from '../support/distribution-registry.ts';
import { addRandomLayer, blobPath, buildRandomImage, MiB, sameFileBytes, type LayoutImage } from '../support/images.ts';
import { OCIREG_CLI, startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { describeFailure, requireTools, runOk, runTool } from '../support/tools.ts';

/**
 * A quota on cached repositories (`ocireg policy set 'hub/**' --quota`) met by skopeo pulling through `ocireg serve`:
 * the quota bounds what the cache keeps, the pull works all the same. docker-registry is the upstream; the image has
 * two 1 MiB layers and the quota room for one.
 */

const dirs = tempDirs('ocireg-pull-cache-quota-');
let work: string;
let upstream: DistributionRegistry;
let server: RegistryServer;
let image: LayoutImage;

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'docker-registry');
  work = await dirs.make();
  upstream = await distributionRegistry(join(work, 'upstream'));
  await upstream.start();
  await buildRandomImage({ layout: join(work, 'src'), tag: 'one', randomBytes: 1 * MiB });
  image = await addRandomLayer(join(work, 'src'), 'one', 1 * MiB);
  const push = await runTool('skopeo', ['copy', '--dest-tls-verify=false', image.ref, `docker://${upstream.host}/library/app:1`], { timeoutMs: 180_000 });
  expect(push.code, describeFailure(push)).toBe(0);
  const dataDir = join(work, 'data');
  await runOk(process.execPath, [OCIREG_CLI, 'cache', 'add', 'hub', upstream.url, '--data-dir', dataDir]);
  await runOk(process.execPath, [OCIREG_CLI, 'policy', 'set', 'hub/**', '--quota', '1.5MiB', '--data-dir', dataDir]);
  server = await startRegistryServer({ dataDir });
}, 240_000);

afterAll(async () => {
  await server?.stop();
  await upstream?.stop();
  await dirs.cleanUp();
});

async function stored(digest: string): Promise<boolean> {
  const files = await readdir(join(server.dataDir, 'blobs', 'sha256', digest.slice(7, 9))).catch(() => []);
  return files.some((file) => file.startsWith(`${digest.slice(7)}.`));
}

const pull = (into: string) => runTool('skopeo', ['copy', '--src-tls-verify=false', `docker://${server.host}/hub/library/app:1`, `oci:${join(work, into)}:1`], { timeoutMs: 180_000 });

describe('pull-through cache over a quota on ocireg serve', () => {
  it('pulls the whole image through a cache whose quota holds one of its two layers, keeps one, and logs the other', async () => {
    // Act: two pulls; the second finds one layer stored and fetches the other from the upstream again.
    const first = await pull('first');
    const second = await pull('second');

    // Assess
    expect(first.code, describeFailure(first)).toBe(0);
    expect(second.code, describeFailure(second)).toBe(0);
    for (const into of ['first', 'second']) {
      for (const blob of image.blobs) expect(await sameFileBytes(blobPath(join(work, into), blob.digest), blobPath(image.layout, blob.digest)), blob.digest).toBe(true);
    }
    const layers = image.manifest.layers.map((layer) => layer.digest);
    const kept = await Promise.all(layers.map(stored));
    expect(kept.filter(Boolean)).toHaveLength(1);
    const refused = layers[kept.indexOf(false)]!;
    const warnings = server.lines().filter((line) => line.msg === 'cache fill over quota: served from the upstream, not stored');
    expect(warnings.map((line) => line.digest)).toEqual([refused, refused]);
    expect(warnings[0]).toMatchObject({ level: 'warn', name: 'hub/library/app', size: image.manifest.layers.find((layer) => layer.digest === refused)!.size });
    expect(String(warnings[0]!.cause)).toContain('quota exceeded');
  });
});

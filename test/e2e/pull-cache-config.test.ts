import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobPath, buildRandomImage, fetchManifest, type LayoutImage } from '../support/images.ts';
import { PULL_CACHE_TARGETS, useHubCache } from '../support/pull-cache-target.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { requireTools } from '../support/tools.ts';

/**
 * The console's config read (`GET /v2/<name>/_ocireg/config/<digest>`) on a pull-through cache repository, on
 * `ocireg serve` and dev:aws, with a docker-registry upstream: the console shows a cached tag whose config no client
 * has pulled yet (viewing the manifest does not fetch the config), so the route fills it from the upstream first,
 * as a blob HEAD does, and answers its bytes.
 */

const dirs = tempDirs('ocireg-pull-cache-config-');
let work: string;
let image: LayoutImage;

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'docker-registry');
  work = await dirs.make();
  image = await buildRandomImage({ layout: join(work, 'src'), tag: 'one', randomBytes: 64 * 1024 });
}, 120_000);

afterAll(async () => {
  await dirs.cleanUp();
});

describe.each(PULL_CACHE_TARGETS)('_ocireg/config on a pull-through cache repository on %s', (kind) => {
  const hub = useHubCache(kind, { dir: () => work, image: () => image, revalidateSeconds: 60 });

  it('fills a config no client pulled yet from the upstream and answers its bytes', async () => {
    // Prepare: the manifest is cached (the console reads it first), the config is not.
    const manifest = await fetchManifest(hub.cache.url, 'hub/library/app', '1');
    const config = image.manifest.config;
    const before = await hub.cache.hasBlob(config.digest);
    // Act
    const res = await fetch(`${hub.cache.url}/v2/hub/library/app/_ocireg/config/${config.digest}`, { redirect: 'manual' });
    const bytes = Buffer.from(await res.arrayBuffer());
    // Assess
    expect(manifest.digest).toBe(image.manifestDigest);
    expect(before).toBe(false);
    expect(res.status, bytes.toString()).toBe(200);
    expect(bytes).toEqual(await readFile(blobPath(image.layout, config.digest)));
    expect(await hub.cache.hasBlob(config.digest)).toBe(true);
  });
});

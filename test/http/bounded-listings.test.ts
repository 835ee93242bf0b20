import { afterAll, describe, expect, it } from 'vitest';
import { MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE } from '../../lib/registry/pagination.ts';
import { openFsStorage } from '../../lib/storage/fs/open-fs-storage.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { memoryRegistry } from '../support/app-client.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { boundedListingsContract, HUGE_N, manifestFor, nextUrl } from './bounded-listings.contract.ts';

const dirs = tempDirs('ocireg-bounds-');
afterAll(() => dirs.cleanUp());

boundedListingsContract('memory', async () => ({ blobs: new MemoryBlobStore(), metadata: new MemoryMetadataStore() }));
boundedListingsContract('fs', async () => openFsStorage(await dirs.make()));

describe('listing bounds', () => {
  it(`clamps n to ${MAX_PAGE_SIZE} and links the next page at that size`, async () => {
    // Prepare
    const { call, metadata } = memoryRegistry();
    const tags = Array.from({ length: MAX_PAGE_SIZE + 1 }, (_, i) => `t${String(i).padStart(6, '0')}`);
    await metadata.putManifest('team/app', manifestFor(), tags);
    // Act
    const first = await call('GET', `/v2/team/app/tags/list?n=${HUGE_N}`);
    const rest = await call('GET', nextUrl(first)!);
    // Assess
    expect(first.json().tags).toHaveLength(MAX_PAGE_SIZE);
    expect(first.headers.link).toBe(`</v2/team/app/tags/list?n=${MAX_PAGE_SIZE}&last=${tags[MAX_PAGE_SIZE - 1]}>; rel="next"`);
    expect(rest.json().tags).toEqual([tags.at(-1)]);
  });

  it(`clamps an n beyond any integer type (${'9'.repeat(30)}) the same way`, async () => {
    const { call, metadata } = memoryRegistry();
    await metadata.putManifest('team/app', manifestFor(), ['a', 'b']);
    const response = await call('GET', `/v2/team/app/tags/list?n=${'9'.repeat(30)}`);
    expect(response.status).toBe(200);
    expect(response.json().tags).toEqual(['a', 'b']);
  });

  it(`bounds the catalog and referrers without n to ${DEFAULT_PAGE_SIZE} entries`, async () => {
    // Prepare
    const { call, metadata } = memoryRegistry();
    const subject = manifestFor();
    await metadata.putManifest('team/app', subject, []);
    await metadata.putManifest('team/app', manifestFor({ subject: subject.digest }), []);
    for (let i = 0; i < DEFAULT_PAGE_SIZE; i++) {
      await metadata.putManifest(`repo${String(i).padStart(4, '0')}`, manifestFor(), ['latest']);
      await metadata.putManifest('team/app', manifestFor({ subject: subject.digest, artifactType: 'application/vnd.example' }), []);
    }
    // Act
    const catalog = await call('GET', '/v2/_catalog');
    const referrers = await call('GET', `/v2/team/app/referrers/${subject.digest}`);
    // Assess
    expect(catalog.json().repositories).toHaveLength(DEFAULT_PAGE_SIZE);
    expect(catalog.headers.link).toBe(`</v2/_catalog?n=${DEFAULT_PAGE_SIZE}&last=repo0999>; rel="next"`);
    expect((await call('GET', nextUrl(catalog)!)).json().repositories).toEqual(['team/app']);
    const first = referrers.json().manifests as Array<{ digest: string }>;
    expect(first).toHaveLength(DEFAULT_PAGE_SIZE);
    const rest = (await call('GET', nextUrl(referrers)!)).json().manifests as Array<{ digest: string }>;
    expect(rest).toHaveLength(1);
    expect([...first, ...rest].map((m) => m.digest)).toEqual([...first, ...rest].map((m) => m.digest).sort());
  });

  it('pages a filtered catalog (a caller who may pull only some repositories) to full pages, and reaches every visible one', async () => {
    // Prepare: 250 repositories, every third one visible
    const { registry, metadata } = memoryRegistry();
    const names = Array.from({ length: 250 }, (_, i) => `repo${String(i).padStart(3, '0')}`);
    for (const name of names) await metadata.putManifest(name, manifestFor(), ['latest']);
    const visible = (name: string) => Number(name.slice(4)) % 3 === 0;
    // Act
    const pages: string[][] = [];
    let last: string | undefined;
    for (let more = true; more && pages.length < 10; ) {
      const page = await registry.listRepositories(last === undefined ? { limit: 30 } : { limit: 30, last }, visible);
      pages.push(page.items);
      more = page.hasMore;
      last = page.items.at(-1);
    }
    // Assess
    expect(pages.map((page) => page.length)).toEqual([30, 30, 24]);
    expect(pages.flat()).toEqual(names.filter(visible));
    expect((await registry.listRepositories({}, visible)).items).toHaveLength(84);
  });
});

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRegistryApp } from '../../lib/http/app.ts';
import { digestOf } from '../../lib/registry/digest.ts';
import { MediaType } from '../../lib/registry/manifest.ts';
import { DEFAULT_PAGE_SIZE } from '../../lib/registry/pagination.ts';
import type { BlobStore, MetadataStore } from '../../lib/registry/ports.ts';
import { Registry } from '../../lib/registry/registry.ts';
import type { StoredManifest } from '../../lib/registry/types.ts';
import { call, type TestResponse } from '../support/app-client.ts';

/** An `n` past DynamoDB's 32-bit Query Limit: before listings were bounded, it answered 500 on the AWS path. */
export const HUGE_N = '999999999999';

export function manifestFor(fields: Partial<StoredManifest> = {}): StoredManifest {
  const content = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, nonce: randomBytes(8).toString('hex') }));
  return { digest: digestOf(content), mediaType: MediaType.ociManifest, content, ...fields };
}

/** The URL inside a `Link: <url>; rel="next"`. */
export function nextUrl(response: TestResponse): string | undefined {
  return /^<([^>]+)>; rel="next"$/.exec(response.headers.link ?? '')?.[1];
}

/**
 * Listings are bounded the same on every backend: a default page without `n`, a clamped huge `n`, 400 for a malformed
 * `n` or `last`. The stores are seeded directly (one manifest under many tags is one write), and read through the app.
 */
export function boundedListingsContract(label: string, open: () => Promise<{ blobs: BlobStore; metadata: MetadataStore }>): void {
  describe(`bounded listings (${label})`, () => {
    async function seeded(seed: (metadata: MetadataStore) => Promise<void>) {
      const { blobs, metadata } = await open();
      await seed(metadata);
      const app = createRegistryApp({ registry: new Registry({ blobs, metadata }) });
      return (url: string) => call(app, 'GET', url);
    }
    const unique = () => `bounds-${randomBytes(4).toString('hex')}`;

    it(`answers a tag list without n with the first ${DEFAULT_PAGE_SIZE} tags and a Link that reaches the rest`, async () => {
      // Prepare
      const name = `${unique()}/app`;
      const tags = Array.from({ length: DEFAULT_PAGE_SIZE + 1 }, (_, i) => `t${String(i).padStart(5, '0')}`);
      const get = await seeded((metadata) => metadata.putManifest(name, manifestFor(), tags));
      // Act
      const first = await get(`/v2/${name}/tags/list`);
      const second = await get(nextUrl(first)!);
      // Assess
      expect(first.status).toBe(200);
      expect(first.json().tags).toEqual(tags.slice(0, DEFAULT_PAGE_SIZE));
      expect(first.headers.link).toBe(`</v2/${name}/tags/list?n=${DEFAULT_PAGE_SIZE}&last=${tags[DEFAULT_PAGE_SIZE - 1]}>; rel="next"`);
      expect(second.json().tags).toEqual([tags.at(-1)]);
      expect(second.headers.link).toBeUndefined();
    });

    it(`serves n=${HUGE_N} on tags, catalog and referrers as a bounded page (200, never 500)`, async () => {
      // Prepare
      const name = `${unique()}/app`;
      const subject = manifestFor();
      const referrer = manifestFor({ subject: subject.digest, artifactType: 'application/vnd.example.sbom' });
      const tags = Array.from({ length: DEFAULT_PAGE_SIZE + 1 }, (_, i) => `v${i}`).sort();
      const get = await seeded(async (metadata) => {
        await metadata.putManifest(name, subject, tags);
        await metadata.putManifest(name, referrer, []);
      });
      // Act
      const tagList = await get(`/v2/${name}/tags/list?n=${HUGE_N}`);
      const catalog = await get(`/v2/_catalog?n=${HUGE_N}`);
      const referrers = await get(`/v2/${name}/referrers/${subject.digest}?n=${HUGE_N}`);
      // Assess
      expect(tagList.status).toBe(200);
      expect(tagList.json().tags).toEqual(tags);
      expect(tagList.headers.link).toBeUndefined();
      expect(catalog.status).toBe(200);
      expect(catalog.json().repositories).toContain(name);
      expect(referrers.status).toBe(200);
      expect(referrers.json().manifests.map((m: { digest: string }) => m.digest)).toEqual([referrer.digest]);
    });

    it('pages the catalog and referrers with n and last, and the referrers Links (artifactType kept) reach every entry once', async () => {
      // Prepare
      const prefix = unique();
      const names = ['a', 'b', 'c'].map((suffix) => `${prefix}/${suffix}`);
      const subject = manifestFor();
      const type = 'application/vnd.example.signature';
      const referrers = Array.from({ length: 5 }, () => manifestFor({ subject: subject.digest, artifactType: type }));
      const get = await seeded(async (metadata) => {
        for (const name of names) await metadata.putManifest(name, manifestFor(), ['latest']);
        await metadata.putManifest(names[0]!, subject, []);
        for (const referrer of referrers) await metadata.putManifest(names[0]!, referrer, []);
        await metadata.putManifest(names[0]!, manifestFor({ subject: subject.digest, artifactType: 'application/vnd.example.other' }), []);
      });
      // Act
      const catalog = await get(`/v2/_catalog?n=2&last=${names[0]}`);
      const referrerPages = await followAll(get, `/v2/${names[0]}/referrers/${subject.digest}?n=2&artifactType=${encodeURIComponent(type)}`, (page) => {
        expect(page.headers['oci-filters-applied']).toBe('artifactType');
        return page.json().manifests.map((m: { digest: string }) => m.digest);
      });
      // Assess
      expect(catalog.json().repositories).toEqual(names.slice(1));
      expect(referrerPages.map((page) => page.length)).toEqual([2, 2, 1]);
      expect(referrerPages.flat()).toEqual(referrers.map((r) => r.digest).sort());
    });

    it('answers a malformed n or last with 400 PAGINATION_NUMBER_INVALID on every listing', async () => {
      const name = `${unique()}/app`;
      const subject = manifestFor();
      const get = await seeded((metadata) => metadata.putManifest(name, subject, ['latest']));
      const urls = [
        ...['-1', 'abc', '1.5', '', '0x10', '1e3'].flatMap((n) => [`/v2/${name}/tags/list?n=${n}`, `/v2/_catalog?n=${n}`, `/v2/${name}/referrers/${subject.digest}?n=${n}`]),
        `/v2/${name}/tags/list?last=${'a'.repeat(2000)}`,
        `/v2/${name}/tags/list?last=.dot`,
        `/v2/_catalog?last=${'a'.repeat(2000)}`,
        '/v2/_catalog?last=UPPER',
        `/v2/${name}/referrers/${subject.digest}?last=sha256:nope`,
      ];
      for (const url of urls) {
        const response = await get(url);
        expect(response.status, url).toBe(400);
        expect(response.json().errors[0].code, url).toBe('PAGINATION_NUMBER_INVALID');
      }
    });
  });
}

/** GETs `url` and every Link after it; returns what `read` makes of each page. */
async function followAll<T>(get: (url: string) => Promise<TestResponse>, url: string, read: (page: TestResponse) => T): Promise<T[]> {
  const pages: T[] = [];
  for (let next: string | undefined = url; next !== undefined && pages.length < 10; ) {
    const page = await get(next);
    expect(page.status).toBe(200);
    pages.push(read(page));
    next = nextUrl(page);
  }
  return pages;
}

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRegistryApp } from '../../lib/http/app.ts';
import { digestOf } from '../../lib/registry/digest.ts';
import { DAY_MS, dayStart } from '../../lib/registry/last-pull.ts';
import type { RepositoryPolicy } from '../../lib/registry/policy.ts';
import type { MetadataStore } from '../../lib/registry/ports.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { planRetention } from '../../lib/registry/retention-snapshot.ts';
import type { TagHistoryStore } from '../../lib/registry/tag-history.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { call } from '../support/app-client.ts';

/**
 * The last pull, on every backend: recorded on a manifest GET (by tag or digest, not HEAD) at most once per record
 * and UTC day, decided from what the pull's read returned; never failing the pull; shown by `_ocireg/tags`; and
 * read by the `--expire-unpulled` retention rule.
 */
export interface LastPullBackend {
  metadata: MetadataStore;
  history: TagHistoryStore;
  /** Pull-record writes sent so far: the store's recordPull calls (memory, fs), UpdateItem requests (DynamoDB). */
  pullWrites(): number;
  /** While on, every pull-record write fails (DynamoDB: throttled by a front; memory, fs: the store's call throws). */
  failPullWrites(on: boolean): void;
}

const INDEX = 'application/vnd.oci.image.index.v1+json';

function index(label: string): { digest: string; text: string } {
  const text = JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [], annotations: { label, nonce: randomBytes(4).toString('hex') } });
  return { digest: digestOf(new TextEncoder().encode(text)), text };
}

const bytes = (text: string) =>
  (async function* () {
    yield new TextEncoder().encode(text);
  })();

export function lastPullContract(backend: string, open: () => Promise<LastPullBackend>): void {
  const repo = () => `pulls-${randomBytes(4).toString('hex')}/app`;

  describe(`last pull: ${backend}`, () => {
    /** A registry whose clock the test moves; pushes are real (their times are the stores' own). */
    async function setup() {
      const stores = await open();
      const clock = { now: dayStart(Date.now()) + 10 * 3_600_000 };
      const failures: unknown[] = [];
      const registry = new Registry({ blobs: new MemoryBlobStore(), metadata: stores.metadata, history: stores.history, now: () => clock.now, onPullNotRecorded: (error) => failures.push(error) });
      const app = createRegistryApp({ registry });
      const name = repo();
      const push = async (reference: string, manifest = index(reference)) => {
        await registry.putManifest(name, reference, bytes(manifest.text), INDEX);
        return manifest;
      };
      return { stores, clock, failures, registry, app, name, push };
    }

    it('writes once a day per record read, whatever the number of pulls, and again the next day', async () => {
      // Prepare
      const { stores, clock, app, name, push } = await setup();
      const image = await push('t');
      const writes = stores.pullWrites();
      // Act: ten pulls by tag over the day
      for (let i = 0; i < 10; i++) {
        expect((await call(app, 'GET', `/v2/${name}/manifests/t`, { headers: { accept: INDEX } })).status).toBe(200);
        clock.now += 60_000;
      }
      // Assess
      expect(stores.pullWrites() - writes).toBe(1);
      // Act: ten pulls by digest the same day: at most one more (a backend that records on the item read writes the manifest item once)
      for (let i = 0; i < 10; i++) await call(app, 'GET', `/v2/${name}/manifests/${image.digest}`);
      const sameDay = stores.pullWrites() - writes;
      expect(sameDay).toBeGreaterThanOrEqual(1);
      expect(sameDay).toBeLessThanOrEqual(2);
      // Act: the next day, ten pulls by tag
      clock.now += DAY_MS;
      for (let i = 0; i < 10; i++) await call(app, 'GET', `/v2/${name}/manifests/t`);
      // Assess: one write more
      expect(stores.pullWrites() - writes).toBe(sameDay + 1);
      expect((await stores.metadata.manifestActivity(name)).get(image.digest)?.pulledAt).toBe(clock.now);
    });

    it('does not count a HEAD as a pull', async () => {
      const { stores, app, name, push } = await setup();
      const image = await push('t');
      const writes = stores.pullWrites();
      expect((await call(app, 'HEAD', `/v2/${name}/manifests/t`)).status).toBe(200);
      expect((await call(app, 'HEAD', `/v2/${name}/manifests/${image.digest}`)).status).toBe(200);
      expect(stores.pullWrites()).toBe(writes);
      expect((await stores.metadata.manifestActivity(name)).get(image.digest)?.pulledAt).toBeUndefined();
    });

    it('shows the last pull of a manifest in _ocireg/tags for each of its tags, by whichever reference it was pulled', async () => {
      // Prepare: one manifest under two tags, another never pulled
      const { clock, app, name, push } = await setup();
      const image = await push('a');
      await push('b', image);
      await push('idle');
      // Act: pulled by tag a only
      await call(app, 'GET', `/v2/${name}/manifests/a`);
      const details = (await call(app, 'GET', `/v2/${name}/_ocireg/tags`)).json() as { tags: Array<{ tag: string; lastPulledAt?: string }> };
      // Assess
      const pulled = new Date(clock.now).toISOString();
      expect(Object.fromEntries(details.tags.map((tag) => [tag.tag, tag.lastPulledAt]))).toEqual({ a: pulled, b: pulled, idle: undefined });
    });

    it('records a stale record once when pulls race: the conditional write lets one through', async () => {
      const { stores, clock, name, push } = await setup();
      const image = await push('t');
      const results = await Promise.all(Array.from({ length: 8 }, () => stores.metadata.recordPull(name, 't', image.digest, clock.now)));
      expect(results.filter(Boolean)).toHaveLength(1);
      const again = await Promise.all(Array.from({ length: 4 }, () => stores.metadata.recordPull(name, image.digest, image.digest, clock.now + 1000)));
      // By digest: a backend recording per manifest has today's pull already; one recording per item writes once more.
      expect(again.filter(Boolean).length).toBeLessThanOrEqual(1);
    });

    it('never brings back a deleted manifest or records a pull on a tag that moved away', async () => {
      // Prepare
      const { stores, clock, registry, name, push } = await setup();
      const gone = await push('gone');
      const moved = await push('t');
      const current = await push('t', index('current'));
      await registry.deleteManifest(name, gone.digest);
      // Act: pulls read before the delete and before the move write late
      const wrote = [await stores.metadata.recordPull(name, gone.digest, gone.digest, clock.now), await stores.metadata.recordPull(name, 'gone', gone.digest, clock.now), await stores.metadata.recordPull(name, 't', moved.digest, clock.now)];
      // Assess
      expect(wrote).toEqual([false, false, false]);
      expect(await stores.metadata.getManifest(name, gone.digest)).toBeUndefined();
      expect(await stores.metadata.resolveTag(name, 'gone')).toBeUndefined();
      const activity = await stores.metadata.manifestActivity(name);
      expect(activity.has(gone.digest)).toBe(false);
      expect(activity.get(current.digest)?.pulledAt).toBeUndefined();
      expect(activity.get(moved.digest)?.pulledAt).toBeUndefined();
    });

    it('answers the pull when the record cannot be written, and tries again on the next pull', async () => {
      const { stores, failures, app, name, push } = await setup();
      const image = await push('t');
      stores.failPullWrites(true);
      try {
        const response = await call(app, 'GET', `/v2/${name}/manifests/t`);
        expect(response.status).toBe(200);
        expect(response.headers['docker-content-digest']).toBe(image.digest);
        expect(failures).toHaveLength(1);
      } finally {
        stores.failPullWrites(false);
      }
      const writes = stores.pullWrites();
      await call(app, 'GET', `/v2/${name}/manifests/t`);
      expect(stores.pullWrites() - writes).toBe(1);
      expect((await stores.metadata.manifestActivity(name)).get(image.digest)?.pulledAt).toBeDefined();
    });

    it('lets --expire-unpulled keep a tag pulled recently and expire one neither pushed nor pulled for the duration', async () => {
      // Prepare: two tags pushed now; 40 days on, one of them is pulled
      const { stores, clock, app, name, push } = await setup();
      const kept = await push('deployed');
      const idle = await push('forgotten');
      const pushedAt = Date.now();
      clock.now = pushedAt + 40 * DAY_MS;
      await call(app, 'GET', `/v2/${name}/manifests/deployed`);
      const policy: RepositoryPolicy = { glob: name, expireUnpulledMs: 30 * DAY_MS, protect: [], immutable: false, mutableTags: [], updatedAt: 1 };
      // Act: the plan 45 days after the pushes
      const plan = await planRetention({ metadata: stores.metadata, history: stores.history }, [policy], pushedAt + 45 * DAY_MS);
      // Assess
      expect(plan.tags.map((tag) => [tag.tag, tag.digest])).toEqual([['forgotten', idle.digest]]);
      expect(plan.tags[0]?.reason).toMatch(/^neither pushed nor pulled for 45d/);
      expect(plan.manifests.map((manifest) => manifest.digest)).toEqual([idle.digest]);
      expect(plan.manifests.some((manifest) => manifest.digest === kept.digest)).toBe(false);
    });
  });
}

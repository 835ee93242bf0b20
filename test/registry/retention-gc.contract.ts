import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { formatRemoval } from '../../lib/cli/gc-output.ts';
import { bytesOf } from '../../lib/registry/bytes.ts';
import type { GcReport } from '../../lib/registry/gc/gc-report.ts';
import { runGc } from '../../lib/registry/gc/run-gc.ts';
import type { RepositoryPolicy } from '../../lib/registry/policy.ts';
import type { PolicyStore } from '../../lib/registry/ports.ts';
import { StoreRetentionPlanner } from '../../lib/registry/retention-planner.ts';
import type { TagHistoryStore } from '../../lib/registry/tag-history.ts';
import { imageIndex, randomBlob } from '../support/builders.ts';
import { expectPullsIdentical, image, push, settle, type GcBackend } from './gc.contract.ts';

/**
 * Retention applied by garbage collection (StoreRetentionPlanner through runGc), on every backend: what the rules
 * expire goes with the blobs only it used, the dry run lists exactly what the real run removes, and nothing a kept
 * tag, a protected glob, a rollback target within K or a kept index needs is touched, even when a push races the run.
 */
export interface RetentionGcBackend extends GcBackend {
  history: TagHistoryStore;
  policies: PolicyStore;
}

const lines = (report: GcReport) => report.removals.map(formatRemoval).sort();

function policy(glob: string, fields: Partial<RepositoryPolicy>): RepositoryPolicy {
  return { glob, protect: [], immutable: false, mutableTags: [], updatedAt: Date.now(), ...fields };
}

export function retentionGcContract(backend: string, open: () => Promise<RetentionGcBackend>): void {
  const repo = (label: string) => `retention-${randomBytes(4).toString('hex')}/${label}`;

  describe(`retention in garbage collection: ${backend}`, () => {
    it('removes what the rules expire and the blobs only it used; the dry run lists the same; protected tags and the last K rollback targets stay', async () => {
      // Prepare: v1 (protected), old, and latest moved twice; keep the newest tag, each kept tag's last change, untagged nothing
      const stores = await open();
      const { registry, metadata, blobs } = stores;
      const name = repo('app');
      const shared = randomBlob(3000);
      const [v1, old, first, second, third] = [image(name, [shared]), image(name, [shared, randomBlob(5000)]), image(name), image(name), image(name)];
      await push(registry, v1, 'v1');
      await push(registry, old, 'old');
      for (const pushed of [first, second, third]) {
        await sleep(5);
        await push(registry, pushed, 'latest');
      }
      await stores.policies.putPolicy(policy(name, { keepLast: 1, protect: ['v*'], expireUntaggedMs: 1, keepHistory: 1 }));
      const records = new Map(await Promise.all([...old.blobs, ...first.blobs].map(async (blob) => [blob.digest, (await metadata.getBlob(blob.digest))!] as const)));
      await settle(metadata);
      await sleep(5);
      const plan = new StoreRetentionPlanner({ metadata, policies: stores.policies, history: stores.history });
      // Act
      const dry = await runGc({ metadata, blobs, plan, graceMs: 0, dryRun: true });
      const real = await runGc({ metadata, blobs, plan, graceMs: 0 });
      // Assess: the same list twice
      expect(lines(real)).toEqual(lines(dry));
      const retained = real.removals.filter((removal) => removal.kind === 'tag' || removal.kind === 'manifest');
      expect(retained.map((removal) => (removal.kind === 'tag' ? `tag ${removal.tag}` : `manifest ${removal.digest}`)).sort()).toEqual(
        [`tag old`, `manifest ${old.manifest.digest}`, `manifest ${first.manifest.digest}`].sort(),
      );
      expect(real.removals).toContainEqual({ kind: 'manifest', name, digest: old.manifest.digest, bytes: old.manifest.bytes.byteLength, reason: 'its tags expired' });
      expect(real.removals).toContainEqual({ kind: 'tag', name, tag: 'old', digest: old.manifest.digest, reason: 'not among the 1 most recently pushed tags' });
      // Assess: the blobs only old and first used are gone, bytes included; the shared layer stays
      const freed = [...old.blobs.slice(0, 1), old.blobs[2]!, ...first.blobs];
      for (const blob of freed) {
        expect(real.removals).toContainEqual({ kind: 'blob', digest: blob.digest, bytes: blob.size });
        expect(await stores.bytesExist(records.get(blob.digest)!.location)).toBe(false);
      }
      expect(real.removals.some((removal) => removal.kind === 'blob' && removal.digest === shared.digest)).toBe(false);
      await expect(registry.getManifest(name, old.manifest.digest)).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
      await expect(registry.getManifest(name, first.manifest.digest)).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
      await expectPullsIdentical(registry, v1, 'v1');
      await expectPullsIdentical(registry, third, 'latest');
      await expectPullsIdentical(registry, second, second.manifest.digest);
      // Assess: a second run finds nothing more to do
      expect((await runGc({ metadata, blobs, plan, graceMs: 0, dryRun: true })).removals).toEqual([]);
    });

    it('records each tag the rules removed in its history, by gc with the rule, once: alone (same write) or with its manifest (from the report)', async () => {
      // Prepare: c → Y, then a → X and b → X; keep the newest tag: a goes alone (b keeps X), c goes with Y
      const stores = await open();
      const { registry, metadata, blobs, history } = stores;
      const name = repo('history');
      const [x, y] = [image(name), image(name)];
      await push(registry, y, 'c');
      for (const tag of ['a', 'b']) {
        await sleep(5);
        await push(registry, x, tag);
      }
      await stores.policies.putPolicy(policy(name, { keepLast: 1 }));
      await settle(metadata);
      const plan = new StoreRetentionPlanner({ metadata, policies: stores.policies, history });
      const recorded: Promise<void>[] = [];
      // Act: a real run, its removals told to the registry as `ocireg serve` does
      await runGc({ metadata, blobs, plan, graceMs: 0, onRemoved: (removal) => void recorded.push(registry.versions.recordCollected(removal)) });
      await Promise.all(recorded);
      // Assess
      const reason = 'removed by retention: not among the 1 most recently pushed tags';
      for (const [tag, digest] of [['a', x.manifest.digest], ['c', y.manifest.digest]] as const) {
        const changes = await history.list(name, tag);
        expect(changes.map((change) => change.action)).toEqual(['deleted', 'created']);
        expect(changes[0]).toMatchObject({ action: 'deleted', previous: digest, actor: { subject: 'gc' }, reason });
      }
      expect((await history.list(name, 'b')).map((change) => change.action)).toEqual(['created']);
    });

    it('keeps what a kept index lists and removes a child only an expired index listed', async () => {
      // Prepare: index x lists a and b (older), index y lists b (newer); keep the newest tag
      const stores = await open();
      const { registry, metadata, blobs } = stores;
      const name = repo('multi');
      const [a, b] = [image(name), image(name)];
      await push(registry, a, a.manifest.digest);
      await push(registry, b, b.manifest.digest);
      const x = imageIndex([a.manifest, b.manifest]);
      const y = imageIndex([b.manifest], { annotations: { n: 'y' } });
      await registry.putManifest(name, 'x', bytesOf(x.bytes), x.mediaType);
      await sleep(5);
      await registry.putManifest(name, 'y', bytesOf(y.bytes), y.mediaType);
      await stores.policies.putPolicy(policy(name, { keepLast: 1 }));
      await settle(metadata);
      const plan = new StoreRetentionPlanner({ metadata, policies: stores.policies, history: stores.history });
      // Act
      const dry = await runGc({ metadata, blobs, plan, graceMs: 0, dryRun: true });
      const real = await runGc({ metadata, blobs, plan, graceMs: 0 });
      // Assess
      expect(lines(real)).toEqual(lines(dry));
      const manifests = real.removals.flatMap((removal) => (removal.kind === 'manifest' ? [[removal.digest, removal.reason]] : []));
      expect(new Map(manifests as [string, string][])).toEqual(
        new Map([
          [x.digest, 'its tags expired'],
          [a.manifest.digest, 'only a deleted index referenced it'],
        ]),
      );
      expect((await registry.getManifest(name, 'y')).digest).toBe(y.digest);
      await expectPullsIdentical(registry, b, b.manifest.digest);
      await expect(registry.getManifest(name, a.manifest.digest)).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    });

    it('spares a manifest pushed again after the run began, with its tags and blobs', async () => {
      // Prepare: old is expired by the rules, then pushed again (by digest) once the run has begun
      const stores = await open();
      const { registry, metadata, blobs } = stores;
      const name = repo('race');
      const [old, newer] = [image(name), image(name)];
      await push(registry, old, 'old');
      await sleep(5);
      await push(registry, newer, 'newer');
      await stores.policies.putPolicy(policy(name, { keepLast: 1 }));
      await settle(metadata);
      const runStart = Date.now();
      await settle(metadata);
      await push(registry, old, old.manifest.digest);
      const plan = new StoreRetentionPlanner({ metadata, policies: stores.policies, history: stores.history });
      // Act: the run's clock says it began before the push
      const report = await runGc({ metadata, blobs, plan, graceMs: 0, now: () => runStart });
      // Assess: the plan expired it, the conditional delete refused, nothing of it went
      expect(report.removals.filter((removal) => 'name' in removal && removal.name === name)).toEqual([]);
      await expectPullsIdentical(registry, old, 'old');
      await expectPullsIdentical(registry, newer, 'newer');
    });
  });
}

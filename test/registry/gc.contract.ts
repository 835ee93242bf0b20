import { describe, expect, it } from 'vitest';
import { bytesOf, readAll } from '../../lib/registry/bytes.ts';
import { isOciError } from '../../lib/registry/errors.ts';
import { GcRun } from '../../lib/registry/gc/collector.ts';
import type { GcReport } from '../../lib/registry/gc/gc-report.ts';
import { formatRemoval } from '../../lib/cli/gc-output.ts';
import { runGc } from '../../lib/registry/gc/run-gc.ts';
import { parseManifest } from '../../lib/registry/manifest.ts';
import type { BlobStore, GcStore, MetadataStore } from '../../lib/registry/ports.ts';
import type { Registry } from '../../lib/registry/registry.ts';
import { artifactManifest, EMPTY_CONFIG, imageManifest, randomBlob, type Blob, type ManifestDoc } from '../support/builders.ts';

export interface GcBackend {
  registry: Registry;
  metadata: MetadataStore & GcStore;
  blobs: BlobStore;
  /** Whether the blob store still holds bytes at `location` (a file on disk, an object in the bucket). */
  bytesExist(location: string): Promise<boolean>;
}

export interface TestImage {
  name: string;
  manifest: ManifestDoc;
  blobs: Blob[];
}

/** An image of a config and `layers` (fresh random ones when not given). */
export function image(name: string, layers: Blob[] = [randomBlob(2048)]): TestImage {
  const config = randomBlob(64);
  return { name, manifest: imageManifest(config, layers), blobs: [config, ...layers] };
}

/**
 * Pushes as a client does: HEAD each blob, upload the ones the repository lacks, PUT the manifest; on
 * MANIFEST_BLOB_UNKNOWN (garbage collection doomed a blob in between) upload that blob again and retry.
 */
export async function push(registry: Registry, pushed: TestImage, tag = 'latest'): Promise<{ retries: number }> {
  let retries = 0;
  for (const blob of pushed.blobs) await ensureBlob(registry, pushed.name, blob);
  for (;;) {
    try {
      await registry.putManifest(pushed.name, tag, bytesOf(pushed.manifest.bytes), pushed.manifest.mediaType);
      return { retries };
    } catch (error) {
      if (!isOciError(error, 'MANIFEST_BLOB_UNKNOWN') || retries++ > 5) throw error;
      const missing = (error.detail as { digest?: string } | undefined)?.digest;
      const blob = pushed.blobs.find((candidate) => candidate.digest === missing);
      if (!blob) throw error;
      await uploadWithRetry(registry, pushed.name, blob);
    }
  }
}

async function ensureBlob(registry: Registry, name: string, blob: Blob): Promise<void> {
  const present = await registry.statBlob(name, blob.digest).then(() => true, (error: unknown) => (isOciError(error, 'BLOB_UNKNOWN') ? false : Promise.reject(error)));
  if (!present) await uploadWithRetry(registry, name, blob);
}

/** BLOB_UPLOAD_INVALID after commit means the record was collected meanwhile: upload again, as clients retry. */
async function uploadWithRetry(registry: Registry, name: string, blob: Blob): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await registry.uploads.monolithic(name, blob.digest, bytesOf(blob.bytes), blob.size);
      return;
    } catch (error) {
      if (!isOciError(error, 'BLOB_UPLOAD_INVALID') || attempt >= 5) throw error;
    }
  }
}

/** Pulls the image by tag and asserts every byte: manifest, config and layers. */
export async function expectPullsIdentical(registry: Registry, pulled: TestImage, tag = 'latest'): Promise<void> {
  const manifest = await registry.getManifest(pulled.name, tag);
  expect(Buffer.from(manifest.content).equals(pulled.manifest.bytes)).toBe(true);
  for (const digest of parseManifest(manifest.content, manifest.mediaType).blobs) {
    const record = await registry.statBlob(pulled.name, digest);
    const read = await registry.readBlob(pulled.name, record);
    const bytes = read.kind === 'stream' ? Buffer.from(await readAll(read.body)) : Buffer.from(await (await fetch(read.url)).arrayBuffer());
    expect(bytes.equals(pulled.blobs.find((blob) => blob.digest === digest)!.bytes), `${pulled.name} ${digest}`).toBe(true);
  }
}

/** Waits out the store's clock tolerance, so what was written so far counts as written before the next scan. */
export async function settle(metadata: GcStore): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, metadata.clockToleranceMs + 2));
}

function lines(report: GcReport): string[] {
  return report.removals.map(formatRemoval).sort();
}

const PHASES = ['mark', 'sweepReferrers', 'sweepLinks', 'sweepBlobs', 'sweepUploads', 'sweepManifestBodies'] as const;

/**
 * Garbage collection through the registry, on one backend: what goes, what stays, the dry run, and pushes
 * interleaved with every phase of a run.
 */
export function gcContract(backend: string, open: () => Promise<GcBackend>): void {
  let counter = 0;
  const repo = (label: string) => `gc-${Date.now().toString(36)}-${counter++}/${label}`;

  describe(`garbage collection: ${backend}`, () => {
    it("removes a deleted image's unique blobs, bytes included, and every other image pulls bit-identical", async () => {
      // Prepare: a and b share a layer; c (another repository) shares a's unique layer
      const { registry, metadata, blobs, bytesExist } = await open();
      const [name, other] = [repo('app'), repo('other')];
      const shared = randomBlob(4096);
      const [onlyA, onlyB] = [randomBlob(3000), randomBlob(3000)];
      const a = image(name, [shared, onlyA]);
      const b = image(name, [shared, onlyB]);
      const c = image(other, [onlyA]);
      await push(registry, a, 'a');
      await push(registry, b, 'b');
      await push(registry, c, 'c');
      const configA = (await metadata.getBlob(a.blobs[0]!.digest))!;
      await registry.deleteManifest(name, a.manifest.digest);
      await settle(metadata);
      // Act
      const report = await runGc({ metadata, blobs, graceMs: 0 });
      // Assess
      expect(lines(report)).toEqual(
        expect.arrayContaining([`link\t${name}@${onlyA.digest}\t${onlyA.size}`, `link\t${name}@${configA.digest}\t${configA.size}`, `blob\t${configA.digest}\t${configA.size}`]),
      );
      expect(report.removals.filter((removal) => removal.kind === 'blob' && [shared.digest, onlyA.digest, onlyB.digest].includes(removal.digest))).toEqual([]);
      expect(await bytesExist(configA.location)).toBe(false);
      expect(await metadata.getBlob(configA.digest)).toBeUndefined();
      await expect(registry.statBlob(name, onlyA.digest)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
      await expectPullsIdentical(registry, b, 'b');
      await expectPullsIdentical(registry, c, 'c');
      expect(report.bytesFreed).toBeGreaterThanOrEqual(configA.size);
    });

    it('removes many images with removals in flight at once (at most `concurrency`), and the rest pull intact', async () => {
      // Prepare: 12 images deleted, 4 kept, all in one repository; the store counts its dooms in flight.
      const { registry, metadata, blobs, bytesExist } = await open();
      const name = repo('many');
      const images = Array.from({ length: 16 }, () => image(name, [randomBlob(1500)]));
      for (const [index, each] of images.entries()) await push(registry, each, `t${index}`);
      const [kept, deleted] = [images.slice(0, 4), images.slice(4)];
      for (const each of deleted) await registry.deleteManifest(name, each.manifest.digest);
      await settle(metadata);
      let inFlight = 0;
      let most = 0;
      const counted = new Proxy(metadata, {
        get(target, property, receiver) {
          const value = Reflect.get(target, property, receiver) as unknown;
          if (typeof value !== 'function') return value;
          if (property !== 'doomLink' && property !== 'doomBlob') return value.bind(target);
          return async (...args: unknown[]) => {
            most = Math.max(most, ++inFlight);
            try {
              return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            } finally {
              inFlight--;
            }
          };
        },
      });
      const locations = await Promise.all(deleted.map(async (each) => (await metadata.getBlob(each.blobs[1]!.digest))!.location));
      // Act
      const report = await runGc({ metadata: counted, blobs, graceMs: 0, concurrency: 4 });
      // Assess
      expect(most).toBeGreaterThan(1);
      expect(most).toBeLessThanOrEqual(4);
      expect(report.removals.filter((removal) => removal.kind === 'blob').map((removal) => (removal as { digest: string }).digest).sort()).toEqual(
        deleted.flatMap((each) => each.blobs.map((blob) => blob.digest)).sort(),
      );
      for (const location of locations) expect(await bytesExist(location)).toBe(false);
      for (const [index, each] of kept.entries()) await expectPullsIdentical(registry, each, `t${index}`);
    });

    it('lists in a dry run exactly what the real run then removes, and the dry run changes nothing', async () => {
      // Prepare
      const { registry, metadata, blobs, bytesExist } = await open();
      const name = repo('dry');
      const gone = image(name);
      const kept = image(name);
      await push(registry, gone, 'gone');
      await push(registry, kept, 'kept');
      await registry.deleteManifest(name, gone.manifest.digest);
      const records = await Promise.all(gone.blobs.map((blob) => metadata.getBlob(blob.digest)));
      await settle(metadata);
      // Act
      const dry = await runGc({ metadata, blobs, graceMs: 0, dryRun: true });
      const stillThere = await Promise.all(records.map((record) => bytesExist(record!.location)));
      const real = await runGc({ metadata, blobs, graceMs: 0 });
      // Assess
      expect(stillThere).toEqual([true, true]);
      const mine = (report: GcReport) => lines(report).filter((line) => gone.blobs.some((blob) => line.includes(blob.digest)));
      expect(mine(dry)).toHaveLength(4);
      expect(mine(real)).toEqual(mine(dry));
      expect(dry.dryRun).toBe(true);
      expect(await Promise.all(records.map((record) => bytesExist(record!.location)))).toEqual([false, false]);
      await expectPullsIdentical(registry, kept, 'kept');
    });

    it('keeps unreferenced blobs younger than the grace period', async () => {
      const { registry, metadata, blobs, bytesExist } = await open();
      const name = repo('young');
      const young = image(name);
      await push(registry, young);
      await registry.deleteManifest(name, young.manifest.digest);
      const report = await runGc({ metadata, blobs, graceMs: 60 * 60 * 1000 });
      expect(report.removals.filter((removal) => 'digest' in removal && young.blobs.some((blob) => blob.digest === removal.digest))).toEqual([]);
      const record = await metadata.getBlob(young.blobs[1]!.digest);
      expect(record && (await bytesExist(record.location))).toBe(true);
    });

    it('removes a referrer whose subject was deleted, but not a tagged one nor one whose subject remains', async () => {
      // Prepare
      const { registry, metadata, blobs } = await open();
      const name = repo('referrers');
      const subject = image(name);
      const kept = image(name);
      await push(registry, subject, 'subject');
      await push(registry, kept, 'kept');
      const artifact = (of: TestImage) => {
        const layer = randomBlob(100);
        return { name, manifest: artifactManifest(of.manifest, 'application/vnd.example.signature', [layer]), blobs: [EMPTY_CONFIG, layer] };
      };
      const [signature, taggedSbom, keptSignature] = [artifact(subject), artifact(subject), artifact(kept)];
      await push(registry, signature, signature.manifest.digest);
      await push(registry, taggedSbom, 'sbom');
      await push(registry, keptSignature, keptSignature.manifest.digest);
      await registry.deleteManifest(name, subject.manifest.digest);
      await settle(metadata);
      // Act
      const report = await runGc({ metadata, blobs, graceMs: 0 });
      // Assess
      const manifests = report.removals.filter((removal) => removal.kind === 'manifest').map((removal) => (removal as { digest: string }).digest);
      expect(manifests).toEqual([signature.manifest.digest]);
      expect(await metadata.getManifest(name, taggedSbom.manifest.digest)).toBeDefined();
      expect(await metadata.getManifest(name, keptSignature.manifest.digest)).toBeDefined();
      expect(await metadata.getManifest(name, signature.manifest.digest)).toBeUndefined();
    });

    for (const [headAt, putAt] of PHASES.flatMap((_, head) => PHASES.slice(head).map((__, offset) => [head, head + offset] as const))) {
      it(`never stores a manifest whose blob is gone: HEAD before ${PHASES[headAt]}, manifest PUT before ${PHASES[putAt]}`, async () => {
        // Prepare: an image deleted long enough ago (grace 0) that its blobs are garbage; another push reuses them
        const { registry, metadata, blobs } = await open();
        const name = repo('race');
        const old = image(name);
        await push(registry, old, 'old');
        await registry.deleteManifest(name, old.manifest.digest);
        await settle(metadata);
        const again = { name, manifest: imageManifest(old.blobs[0]!, old.blobs.slice(1), { annotations: { again: 'yes' } }), blobs: old.blobs };
        const run = new GcRun({ metadata, blobs, graceMs: 0 });
        // Act: run the phases, pushing in between: the client HEADs the blobs at one point, PUTs the manifest later
        let outcome: Promise<unknown> | undefined;
        let headed = false;
        for (const [index, phase] of PHASES.entries()) {
          if (index === headAt) {
            for (const blob of again.blobs) await ensureBlob(registry, name, blob);
            headed = true;
          }
          if (index === putAt) {
            outcome = registry.putManifest(name, 'again', bytesOf(again.manifest.bytes), again.manifest.mediaType).then(
              () => 'stored',
              (error: unknown) => (isOciError(error, 'MANIFEST_BLOB_UNKNOWN') ? 'refused' : Promise.reject(error)),
            );
            await outcome;
          }
          await run[phase]();
        }
        expect(headed).toBe(true);
        // Assess: stored with every blob intact, or refused; a refused client pushes again and succeeds
        const result = await outcome;
        if (result === 'stored') {
          await expectPullsIdentical(registry, again, 'again');
        } else {
          expect(result).toBe('refused');
          await push(registry, again, 'again');
          await expectPullsIdentical(registry, again, 'again');
        }
        await settle(metadata);
        await runGc({ metadata, blobs, graceMs: 0 });
        await expectPullsIdentical(registry, again, 'again');
      });
    }

    it('loses nothing of 16 pushes that run during a collection', async () => {
      // Prepare: garbage to collect, some of whose blobs the pushes reuse
      const { registry, metadata, blobs } = await open();
      const name = repo('busy');
      const base = randomBlob(8192);
      const garbage = Array.from({ length: 6 }, () => image(name));
      for (const [index, old] of garbage.entries()) await push(registry, old, `old-${index}`);
      for (const old of garbage) await registry.deleteManifest(name, old.manifest.digest);
      await settle(metadata);
      const pushes = Array.from({ length: 16 }, (_, index) => image(index % 2 === 0 ? name : repo(`busy-${index}`), [base, garbage[index % garbage.length]!.blobs[1]!, randomBlob(1024)]));
      // Act
      const [report] = await Promise.all([runGc({ metadata, blobs, graceMs: 0 }), ...pushes.map((pushed, index) => push(registry, pushed, `v${index}`))]);
      // Assess
      for (const [index, pushed] of pushes.entries()) await expectPullsIdentical(registry, pushed, `v${index}`);
      await settle(metadata);
      const after = await runGc({ metadata, blobs, graceMs: 0 });
      for (const [index, pushed] of pushes.entries()) await expectPullsIdentical(registry, pushed, `v${index}`);
      expect(report.objectsDeleted + after.objectsDeleted).toBeGreaterThan(0);
      const configs = garbage.map((old) => old.blobs[0]!.digest);
      expect(await Promise.all(configs.map((digest) => metadata.getBlob(digest)))).toEqual(configs.map(() => undefined));
    });
  });
}


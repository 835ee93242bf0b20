import { randomBytes, randomUUID } from 'node:crypto';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { bytesOf } from '../../lib/registry/bytes.ts';
import { STRAY_BYTES_MIN_AGE_MS } from '../../lib/registry/gc/collector.ts';
import { runGc } from '../../lib/registry/gc/run-gc.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { createLocalResources, resourceNames, type ResourceNames } from '../../lib/storage/aws-resources.ts';
import { DynamoDbMetadataStore } from '../../lib/storage/dynamodb/dynamodb-metadata-store.ts';
import { blobKey, manifestKey } from '../../lib/storage/s3/keys.ts';
import { S3BlobStore } from '../../lib/storage/s3/s3-blob-store.ts';
import { S3ManifestBodyStore } from '../../lib/storage/s3/s3-manifest-body-store.ts';
import { S3ObjectScan } from '../../lib/storage/s3/s3-object-scan.ts';
import { imageIndex, imageManifest, randomBlob } from '../support/builders.ts';
import { useLocalBackends } from '../support/local-backends.ts';
import { expectPullsIdentical, gcContract, image, push, settle, type GcBackend } from '../registry/gc.contract.ts';
import { gcStoreContract } from './gc-store.contract.ts';

/**
 * Garbage collection on DynamoDB Local + s3rver (strict layer): the GcStore contract and the collector contract
 * with its interleaving tests, then what only the AWS backend has: bytes under blobs/ without a record, large
 * manifest bodies in S3, manifests with more references than one transaction holds.
 */
const local = useLocalBackends('ocireg-gc');
/** Everything runs on this machine's one clock; a few ms keep `settle` short and still exercise `since`. */
const CLOCK_TOLERANCE_MS = 5;

function backend(names = local.names): GcBackend & { metadata: DynamoDbMetadataStore } {
  const { s3, dynamo } = local.aws;
  const bodies = new S3ManifestBodyStore({ s3, bucket: names.bucket });
  const metadata = new DynamoDbMetadataStore({ dynamo, table: names.table, bodies, objects: new S3ObjectScan({ s3, bucket: names.bucket }), clockToleranceMs: CLOCK_TOLERANCE_MS });
  const blobs = new S3BlobStore({ s3, bucket: names.bucket });
  return { registry: new Registry({ blobs, metadata }), metadata, blobs, bytesExist: (location) => objectExists(names.bucket, location) };
}

async function objectExists(bucket: string, key: string): Promise<boolean> {
  return local.aws.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
    () => true,
    (error: unknown) => ((error as Error).name === 'NotFound' ? false : Promise.reject(error)),
  );
}

/** Resources of their own (the store contract's manifests are not images; a skewed clock collects everything). */
async function freshResources(label: string): Promise<ResourceNames> {
  const names = resourceNames(`${label}-${randomBytes(3).toString('hex')}`);
  await createLocalResources(local.aws.dynamo, local.aws.s3, names);
  return names;
}

let storeNames: Promise<ResourceNames> | undefined;
gcStoreContract('DynamoDB Local', async () => backend(await (storeNames ??= freshResources('gc-store'))).metadata);
gcContract('DynamoDB Local + s3rver', async () => backend());

/** An image manifest over 350 KB (padding beside its descriptors): its body goes to the ManifestBodyStore (S3). */
function largeImage(name: string) {
  const built = image(name);
  return { ...built, manifest: imageManifest(built.blobs[0]!, built.blobs.slice(1), { padding: randomBytes(300_000).toString('base64') }) };
}

describe('garbage collection on the AWS backend: what only S3 and DynamoDB have', () => {
  it('splits the scan into parallel Scan segments that together list every entry once, the bucket in one of them', async () => {
    // Prepare: a registry of its own with images, a deleted one, and a stray object under blobs/
    const names = await freshResources('gc-seg');
    const { registry, metadata } = backend(names);
    for (let index = 0; index < 12; index++) await push(registry, image(`seg/app-${index % 3}`), `t${index}`);
    const gone = image('seg/gone');
    await push(registry, gone);
    await registry.deleteManifest('seg/gone', gone.manifest.digest);
    await local.aws.s3.send(new PutObjectCommand({ Bucket: names.bucket, Key: blobKey(randomUUID()), Body: randomBytes(64) }));
    const chain = async (start: string | undefined) => {
      const entries: string[] = [];
      let cursor = start;
      do {
        // Pages of 5: every segment and the bucket listing page on.
        const page = await metadata.scan(cursor, 5);
        entries.push(...page.items.map((entry) => JSON.stringify({ ...entry, ...('manifest' in entry ? { manifest: entry.manifest.digest } : {}) })));
        cursor = page.cursor;
      } while (cursor !== undefined);
      return entries;
    };
    // Act
    const whole = await chain(undefined);
    const segments = await Promise.all(metadata.scanStarts(4).map(chain));
    // Assess
    expect(whole.length).toBeGreaterThan(40);
    expect(segments.filter((segment) => segment.length > 0).length).toBeGreaterThan(1);
    expect(segments.flat().sort()).toEqual(whole.sort());
    expect(new Set(whole).size).toBe(whole.length);
    // Every object under blobs/ (13 images of two blobs, and the stray one), listed by segment 0 alone.
    expect(segments.map((segment) => segment.filter((entry) => entry.includes('"kind":"bytes"')).length)).toEqual([13 * 2 + 1, 0, 0, 0]);
  });

  it('collects an object under blobs/ that no record names once it is past the stray-bytes age, not before', async () => {
    // Prepare: resources of its own (a clock a day ahead collects everything unreferenced)
    const names = await freshResources('gc-stray');
    const { registry, metadata, blobs, bytesExist } = backend(names);
    const kept = image('stray/app');
    await push(registry, kept);
    const stray = blobKey(randomUUID());
    await local.aws.s3.send(new PutObjectCommand({ Bucket: names.bucket, Key: stray, Body: randomBytes(1234) }));
    const dayAhead = () => Date.now() + STRAY_BYTES_MIN_AGE_MS + 60_000;
    // Act
    const young = await runGc({ metadata, blobs, graceMs: 0 });
    const dry = await runGc({ metadata, blobs, graceMs: 0, dryRun: true, now: dayAhead });
    const real = await runGc({ metadata, blobs, graceMs: 0, now: dayAhead });
    // Assess
    expect(young.removals).toEqual([]);
    expect(dry.removals).toEqual([{ kind: 'bytes', location: stray, bytes: 1234 }]);
    expect(real.removals).toEqual(dry.removals);
    expect(await bytesExist(stray)).toBe(false);
    await expectPullsIdentical(registry, kept);
  });

  it("collects a large manifest's body from S3 once no manifest of any repository has it, and keeps a needed one", async () => {
    // Prepare: the same large manifest in two repositories, one deleted from both; another kept in one
    const { registry, metadata, blobs, bytesExist } = backend();
    const gone = largeImage('bodies/gone');
    const kept = largeImage('bodies/kept');
    await push(registry, gone);
    await push(registry, { ...gone, name: 'bodies/gone-too' });
    await push(registry, kept);
    expect(await bytesExist(manifestKey(gone.manifest.digest))).toBe(true);
    await registry.deleteManifest('bodies/gone', gone.manifest.digest);
    const whileShared = await runGc({ metadata, blobs, graceMs: 0, dryRun: true });
    await registry.deleteManifest('bodies/gone-too', gone.manifest.digest);
    await settle(metadata);
    // Act
    const report = await runGc({ metadata, blobs, graceMs: 0 });
    // Assess
    expect(whileShared.removals.filter((removal) => removal.kind === 'manifest-body')).toEqual([]);
    expect(report.removals).toContainEqual({ kind: 'manifest-body', digest: gone.manifest.digest, bytes: gone.manifest.bytes.byteLength });
    expect(report.removals.filter((removal) => removal.kind === 'manifest-body' && removal.digest === kept.manifest.digest)).toEqual([]);
    expect(await bytesExist(manifestKey(gone.manifest.digest))).toBe(false);
    await expectPullsIdentical(registry, kept);
  });

  it('stores a large manifest pushed while its body is doomed only after the run deleted it, with a body of its own', async () => {
    // Prepare: a large manifest deleted; a run dooms its body
    const { registry, metadata } = backend();
    const large = largeImage('bodies/again');
    await push(registry, large);
    await registry.deleteManifest(large.name, large.manifest.digest);
    await settle(metadata);
    const since = Date.now() - metadata.clockToleranceMs;
    expect(await metadata.doomManifestBody(large.manifest.digest, 'run-body', since)).toBe(true);
    // Act: the push waits on the doomed guard while the run deletes the body
    const pushing = push(registry, large);
    const dropped = await metadata.dropManifestBody(large.manifest.digest, 'run-body');
    await pushing;
    // Assess
    expect(dropped).toBe(true);
    await expectPullsIdentical(registry, large);
  });

  it('puts a large body again when a run deleted it between the reservation and the manifest write', async () => {
    // Prepare: a body store that lets a whole run doom and drop the body right after the push wrote it, once
    const names = local.names;
    const { s3, dynamo } = local.aws;
    const real = new S3ManifestBodyStore({ s3, bucket: names.bucket });
    let collector: DynamoDbMetadataStore | undefined;
    let runs = 0;
    const racing = {
      get: (digest: string) => real.get(digest),
      delete: (digest: string) => real.delete(digest),
      async put(digest: string, content: Uint8Array, mediaType: string) {
        await real.put(digest, content, mediaType);
        if (runs++ > 0) return;
        await settle(collector!);
        expect(await collector!.doomManifestBody(digest, 'run-between', Date.now() - collector!.clockToleranceMs)).toBe(true);
        expect(await collector!.dropManifestBody(digest, 'run-between')).toBe(true);
      },
    };
    collector = new DynamoDbMetadataStore({ dynamo, table: names.table, bodies: real, clockToleranceMs: CLOCK_TOLERANCE_MS });
    const metadata = new DynamoDbMetadataStore({ dynamo, table: names.table, bodies: racing, clockToleranceMs: CLOCK_TOLERANCE_MS });
    const registry = new Registry({ blobs: new S3BlobStore({ s3, bucket: names.bucket }), metadata });
    const large = largeImage('bodies/between');
    // Act
    await push(registry, large);
    // Assess: the transaction saw another guard generation and the push started over, writing the body again
    expect(runs).toBe(2);
    await expectPullsIdentical(registry, large);
  });

  it('pushes an index of 120 manifests (more than one transaction holds), leasing them, and refuses one that needs a doomed child', async () => {
    // Prepare: 121 child manifests over one config and layer
    const { registry, metadata } = backend();
    const name = `wide/index-${randomBytes(3).toString('hex')}`;
    const [config, layer] = [randomBlob(64), randomBlob(512)];
    const children = Array.from({ length: 121 }, (_, index) => imageManifest(config, [layer], { annotations: { index: String(index) } }));
    await push(registry, { name, manifest: children[0]!, blobs: [config, layer] }, 'child-0');
    for (const child of children.slice(1)) await registry.putManifest(name, child.digest, bytesOf(child.bytes), child.mediaType);
    const wide = imageIndex(children.slice(0, 120));
    const wider = imageIndex(children);
    // Act: the first index leases its 120 children; a run then dooms the 121st, which only the second index needs
    await registry.putManifest(name, 'wide', bytesOf(wide.bytes), wide.mediaType);
    await settle(metadata);
    const since = Date.now() - metadata.clockToleranceMs;
    const leasedDoomed = await metadata.doomManifest(name, children[0]!.digest, 'run-wide', since);
    const extraDoomed = await metadata.doomManifest(name, children[120]!.digest, 'run-wide', since);
    const refused = await registry.putManifest(name, 'wider', bytesOf(wider.bytes), wider.mediaType).catch((error: unknown) => error);
    // Assess
    expect(Buffer.from((await registry.getManifest(name, 'wide')).content).equals(wide.bytes)).toBe(true);
    expect(leasedDoomed).toBe(false);
    expect(extraDoomed).toBe(true);
    expect(refused).toMatchObject({ code: 'MANIFEST_BLOB_UNKNOWN', detail: { digest: children[120]!.digest } });
    await expect(registry.getManifest(name, 'wider')).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
  });
});

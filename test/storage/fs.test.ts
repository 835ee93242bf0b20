import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bytesOf, readAll } from '../../lib/registry/bytes.ts';
import { digestOf, parseDigest } from '../../lib/registry/digest.ts';
import { openFsStorage } from '../../lib/storage/fs/open-fs-storage.ts';
import { blobStoreContract } from './blob-store.contract.ts';
import { gcStoreContract } from './gc-store.contract.ts';
import { metadataStoreContract, storedManifest } from './metadata-store.contract.ts';
import { tagHistoryStoreContract } from './tag-history-store.contract.ts';
import { FsTagHistoryStore } from '../../lib/storage/fs/fs-tag-history-store.ts';
import { FsMetadataStore } from '../../lib/storage/fs/fs-metadata-store.ts';
import { KeyedMutex } from '../../lib/storage/fs/keyed-mutex.ts';

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ocireg-fs-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

blobStoreContract('fs', async () => ({ store: (await openFsStorage(await freshDir())).blobs }));
const shared = freshDir().then(openFsStorage);
metadataStoreContract('fs', async () => (await shared).metadata);
tagHistoryStoreContract('fs', async (depth) => {
  const keys = (await shared).keys;
  const locks = new KeyedMutex();
  return { metadata: new FsMetadataStore(keys, locks), history: new FsTagHistoryStore(keys, depth, locks) };
});
gcStoreContract('fs', async () => (await shared).metadata);

describe('FsBlobStore specifics', () => {
  it('verifies by re-reading the file when the in-memory hash was lost (a restart between PATCH and PUT)', async () => {
    // Prepare
    const dir = await freshDir();
    const before = await openFsStorage(dir);
    const content = randomBytes(100_000);
    const state = await before.blobs.startUpload('restart');
    const appended = await before.blobs.append(state, 0, bytesOf(content));
    // Act: a new process opens the same data dir
    const after = await openFsStorage(dir);
    const location = await after.blobs.commit(appended.state, parseDigest(digestOf(content)), appended.size);
    // Assess
    const read = await after.blobs.read(location);
    expect(read.kind === 'stream' && Buffer.from(await readAll(read.body))).toEqual(content);
  });

  it('drops bytes past the acknowledged offset before appending (an append that failed half way)', async () => {
    const dir = await freshDir();
    const { blobs } = await openFsStorage(dir);
    const first = randomBytes(1000);
    const second = randomBytes(500);
    const state = await blobs.startUpload('partial');
    await blobs.append(state, 0, bytesOf(first));
    // A failed append had written 1,000 more bytes at offset 1000, never acknowledged:
    await blobs.append(state, 1000, bytesOf(randomBytes(1000)));
    const retried = await blobs.append(state, 1000, bytesOf(second));
    const content = Buffer.concat([first, second]);
    await blobs.commit(retried.state, parseDigest(digestOf(content)), retried.size);
    expect(retried.size).toBe(1500);
  });

  it('leaves no file in blobs/ when the digest does not match', async () => {
    const dir = await freshDir();
    const { blobs, metadata } = await openFsStorage(dir);
    const content = randomBytes(4096);
    const state = await blobs.startUpload('wrong');
    const appended = await blobs.append(state, 0, bytesOf(content));
    const claimed = digestOf(randomBytes(8));
    await expect(blobs.commit(appended.state, parseDigest(claimed), appended.size)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    expect(await metadata.getBlob(claimed)).toBeUndefined();
    expect(await metadata.getBlob(digestOf(content))).toBeUndefined();
    expect(await readdir(join(dir, 'blobs')).catch(() => [])).toEqual([]);
  });
});

describe('fs tag history: the history file before the tag, the tag file as the commit point', () => {
  const write = (depth = 10) => ({ depth, stamp: { at: new Date().toISOString(), actor: { subject: 'alice' } } });

  it('leaves neither the tag change nor its entry when the tag write fails after the history intent', async () => {
    // Prepare: v1 → first, recorded; then the tags directory is made unwritable (a file where the directory goes)
    const { metadata, history, keys } = await openFsStorage(await freshDir());
    const [first, second, third] = [storedManifest(), storedManifest(), storedManifest()];
    await metadata.putManifest('team/app', first, ['v1'], { history: write() });
    const tagsDir = dirname(keys.tag('team/app', 'v1'));
    await rm(tagsDir, { recursive: true });
    await writeFile(tagsDir, 'not a directory');
    // Act
    const failed = await metadata.putManifest('team/app', second, ['v1'], { history: write() }).catch((error: unknown) => error);
    // Assess: the intent for `second` was written, but no tag followed it: it is not read back
    expect(failed).toBeInstanceOf(Error);
    expect(await readFile(keys.tagHistory('team/app', 'v1'), 'utf8')).toContain(second.digest);
    expect((await history.list('team/app', 'v1')).map((change) => change.digest)).toEqual([first.digest]);
    // …and the next change of the tag writes its history without it
    await rm(tagsDir);
    await mkdir(tagsDir);
    await writeFile(keys.tag('team/app', 'v1'), first.digest);
    await metadata.putManifest('team/app', third, ['v1'], { history: write() });
    expect((await history.list('team/app', 'v1')).map((change) => [change.action, change.previous, change.digest])).toEqual([['moved', first.digest, third.digest], ['created', undefined, first.digest]]);
    expect(await readFile(keys.tagHistory('team/app', 'v1'), 'utf8')).not.toContain(second.digest);
  });

  it('reads a pending entry as committed once its tag followed it (a crash after the tag write, before the confirmation)', async () => {
    // Prepare: what a process that died between step 2 and 3 leaves
    const { metadata, history, keys } = await openFsStorage(await freshDir());
    const [first, second] = [storedManifest(), storedManifest()];
    await metadata.putManifest('team/app', first, ['v1'], { history: write() });
    await metadata.putManifest('team/app', second, [], {});
    const confirmed = JSON.parse(await readFile(keys.tagHistory('team/app', 'v1'), 'utf8')) as object[];
    const pending = { tag: 'v1', at: new Date().toISOString(), action: 'moved', previous: first.digest, digest: second.digest, actor: { subject: 'bob' }, pending: true };
    await writeFile(keys.tagHistory('team/app', 'v1'), JSON.stringify([pending, ...confirmed]));
    // Act + Assess: before the tag write (step 1 only), the entry is not there
    expect((await history.list('team/app', 'v1')).map((change) => change.digest)).toEqual([first.digest]);
    // after it (steps 1 and 2), it is, without its flag
    await writeFile(keys.tag('team/app', 'v1'), second.digest);
    const changes = await history.list('team/app', 'v1');
    expect(changes.map((change) => change.digest)).toEqual([second.digest, first.digest]);
    expect(changes[0]).not.toHaveProperty('pending');
  });
});

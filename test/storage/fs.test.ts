import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bytesOf, readAll } from '../../lib/registry/bytes.ts';
import { digestOf, parseDigest } from '../../lib/registry/digest.ts';
import { openFsStorage } from '../../lib/storage/fs/open-fs-storage.ts';
import { blobStoreContract } from './blob-store.contract.ts';
import { gcStoreContract } from './gc-store.contract.ts';
import { metadataStoreContract } from './metadata-store.contract.ts';
import { tagHistoryStoreContract } from './tag-history-store.contract.ts';
import { FsTagHistoryStore } from '../../lib/storage/fs/fs-tag-history-store.ts';

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
tagHistoryStoreContract('fs', async (depth) => new FsTagHistoryStore((await shared).keys, depth));
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

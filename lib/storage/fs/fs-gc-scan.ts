import { join } from 'node:path';
import type { GcEntry, ScanPage } from '../../registry/gc/gc-entries.ts';
import type { BlobRecord, UploadSession } from '../../registry/types.ts';
import { readFileIfExists } from './atomic-file.ts';
import { listDir, listTwoLevels, readDated, statIfExists } from './data-dir-reads.ts';
import type { FsKeys } from './keys.ts';
import { fromManifestFile, type ManifestFile } from './manifest-file.ts';

/** An entry's sort key and how to read it once it falls on the page. */
type LazyEntry = [string, () => Promise<GcEntry | undefined>];

/**
 * Garbage collection's scan of a data dir (FsMetadataStore.scan): walks it (the file names are the keys: no file is
 * read for an entry before its page), sorts the entries by key and reads the page after `cursor`. An entry whose
 * file vanished meanwhile is left out.
 */
export async function scanDataDir(keys: FsKeys, cursor: string | undefined, limit: number): Promise<ScanPage<GcEntry>> {
  const entries: LazyEntry[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const entry of await listDir(dir)) {
      if (entry.startsWith('_')) continue;
      const name = prefix ? `${prefix}/${entry}` : entry;
      await repositoryEntries(keys, name, entries);
      await walk(join(dir, entry), name);
    }
  };
  await walk(keys.repositoriesDir, '');
  for (const [algorithm, file] of await listTwoLevels(keys.blobRecordsDir)) {
    const digest = `${algorithm}:${file.replace(/\.json$/, '')}`;
    entries.push([`3\u0000${digest}`, async () => {
      const dated = await readDated<BlobRecord>(keys.blobRecord(digest));
      return dated && { kind: 'blob', digest, size: dated.value.size, location: dated.value.location, createdAt: dated.at };
    }]);
  }
  for (const file of await listDir(keys.uploadSessionsDir)) {
    entries.push([`4\u0000${file}`, async () => {
      const dated = await readDated<UploadSession>(join(keys.uploadSessionsDir, file));
      return dated && { kind: 'upload', name: dated.value.name, uploadId: dated.value.uploadId, createdAt: dated.value.createdAt, storage: dated.value.storage };
    }]);
  }
  for (const [algorithm, prefix] of await listTwoLevels(keys.blobsDir)) {
    for (const file of await listDir(join(keys.blobsDir, algorithm, prefix))) {
      const location = keys.locationOf(algorithm, file);
      entries.push([`5\u0000${location}`, async () => {
        const info = await statIfExists(keys.blobPath(location));
        return info && { kind: 'bytes', location, size: info.size, changedAt: info.changedAt };
      }]);
    }
  }
  for (const uploadId of await listDir(keys.uploadsDir)) {
    entries.push([`6\u0000${uploadId}`, async () => {
      const info = await statIfExists(keys.uploadData(uploadId));
      return info && { kind: 'upload-data', uploadId, size: info.size, changedAt: info.changedAt };
    }]);
  }
  const after = entries.filter(([key]) => cursor === undefined || key > cursor).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const page = after.slice(0, limit);
  const items = (await Promise.all(page.map(([, load]) => load()))).filter((entry) => entry !== undefined);
  return { items, cursor: after.length > limit ? page.at(-1)![0] : undefined };
}

async function repositoryEntries(keys: FsKeys, name: string, entries: LazyEntry[]): Promise<void> {
  let tagged: Promise<Set<string>> | undefined;
  const taggedDigests = () =>
    (tagged ??= listDir(keys.tagsDir(name)).then(async (tags) => new Set((await Promise.all(tags.map((tag) => readFileIfExists(keys.tag(name, tag))))).flatMap((digest) => (digest === undefined ? [] : [digest.trim()])))));
  for (const [algorithm, file] of await listTwoLevels(keys.manifestsDir(name))) {
    const digest = `${algorithm}:${file.replace(/\.json$/, '')}`;
    entries.push([`1\u0000${name}\u0000${digest}`, async () => {
      const dated = await readDated<ManifestFile>(keys.manifest(name, digest));
      if (!dated) return undefined;
      return { kind: 'manifest', name, manifest: fromManifestFile(dated.value), tagged: (await taggedDigests()).has(digest), storedAt: dated.at };
    }]);
  }
  for (const [algorithm, file] of await listTwoLevels(join(keys.repository(name), '_blobs'))) {
    const digest = `${algorithm}:${file.replace(/\.json$/, '')}`;
    entries.push([`2\u0000${name}\u0000${digest}`, async () => {
      const dated = await readDated<BlobRecord>(keys.blobLink(name, digest));
      return dated && { kind: 'link', name, digest, size: dated.value.size, createdAt: dated.at };
    }]);
  }
}

import { join } from 'node:path';

/**
 * Every path of the filesystem backend, built here and only here.
 *
 * <data-dir>/
 *   blobs/<alg>/<hex[0:2]>/<hex>.<uploadId>           committed blob bytes; renamed into place after verification, never
 *                                                     overwritten (data dirs from before garbage collection: <hex>)
 *   uploads/<uploadId>                                bytes of an upload in progress
 *   tmp/                                              temp files, renamed into place (same filesystem: atomic)
 *   control.sock                                      unix socket of the process that owns the data dir (`ocireg serve`,
 *                                                     or `ocireg gc` run alone): admin calls such as gc go through it
 *   auth/identities.json                              users, token hashes, grants, public globs (mode 0600)
 *   auth/signing-key.pem                              the ES256 key that signs registry tokens (mode 0600)
 *   policies.json                                     storage policies by repository glob (`ocireg policy`)
 *   cache/rules.json                                  pull-through cache rules with upstream credentials (mode 0600)
 *   metadata/
 *     uploads/<uploadId>.json                         upload session
 *     blobs/<alg>/<hex>.json                          global record of a committed blob (created once, first wins)
 *     repositories/<name>/                            name may hold `/`; components never start with `_`
 *       _blobs/<alg>/<hex>.json                       link: the blob record, as the repository sees it
 *       _manifests/<alg>/<hex>.json                   manifest record, content inline (base64)
 *       _tags/<tag>                                   the digest the tag points at
 *       _history/<tag>.json                           the tag's last changes, newest first (fs-tag-history-store.ts)
 *       _pulls/<alg>/<hex>                            the manifest's last recorded pull, epoch ms (fs-pull-records.ts)
 *       _referrers/<alg>/<subject hex>/<alg>-<hex>.json   descriptor of a manifest whose subject is that digest
 *
 * A blob's location (what the metadata stores) is `<alg>/<hex>.<uploadId>` (or `<alg>/<hex>`). One file per upload,
 * as on S3: a blob uploaded again while garbage collection deletes the old copy lands in a file of its own
 * (lib/registry/gc/collector.ts); a duplicate upload's file is deleted by the core.
 */
export class FsKeys {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  get tmpDir(): string {
    return join(this.root, 'tmp');
  }

  get controlSocket(): string {
    return join(this.root, 'control.sock');
  }

  get identities(): string {
    return join(this.root, 'auth', 'identities.json');
  }

  get policies(): string {
    return join(this.root, 'policies.json');
  }

  get cacheRules(): string {
    return join(this.root, 'cache', 'rules.json');
  }

  get signingKey(): string {
    return join(this.root, 'auth', 'signing-key.pem');
  }

  get uploadsDir(): string {
    return join(this.root, 'uploads');
  }

  get repositoriesDir(): string {
    return join(this.root, 'metadata', 'repositories');
  }

  get blobsDir(): string {
    return join(this.root, 'blobs');
  }

  blobLocation(digest: string, uploadId: string): string {
    return `${digest.replace(':', '/')}.${safeId(uploadId)}`;
  }

  blobPath(location: string): string {
    const [algorithm, file] = location.split('/', 2) as [string, string];
    return join(this.blobsDir, algorithm, file.slice(0, 2), file);
  }

  /** The location of the file at blobs/<alg>/<xx>/<file>. */
  locationOf(algorithm: string, file: string): string {
    return `${algorithm}/${file}`;
  }

  get blobRecordsDir(): string {
    return join(this.root, 'metadata', 'blobs');
  }

  get uploadSessionsDir(): string {
    return join(this.root, 'metadata', 'uploads');
  }

  blobRecord(digest: string): string {
    return join(this.blobRecordsDir, ...digestParts(digest, '.json'));
  }

  uploadData(uploadId: string): string {
    return join(this.uploadsDir, safeId(uploadId));
  }

  uploadSession(uploadId: string): string {
    return join(this.uploadSessionsDir, `${safeId(uploadId)}.json`);
  }

  repository(name: string): string {
    return join(this.repositoriesDir, ...name.split('/'));
  }

  blobLink(name: string, digest: string): string {
    return join(this.repository(name), '_blobs', ...digestParts(digest, '.json'));
  }

  manifestsDir(name: string): string {
    return join(this.repository(name), '_manifests');
  }

  manifest(name: string, digest: string): string {
    return join(this.manifestsDir(name), ...digestParts(digest, '.json'));
  }

  tagsDir(name: string): string {
    return join(this.repository(name), '_tags');
  }

  tag(name: string, tag: string): string {
    return join(this.tagsDir(name), tag);
  }

  tagHistoryDir(name: string): string {
    return join(this.repository(name), '_history');
  }

  tagHistory(name: string, tag: string): string {
    return join(this.tagHistoryDir(name), `${tag}.json`);
  }

  pullsDir(name: string): string {
    return join(this.repository(name), '_pulls');
  }

  pull(name: string, digest: string): string {
    return join(this.pullsDir(name), ...digestParts(digest, ''));
  }

  referrersDir(name: string, subject: string): string {
    return join(this.repository(name), '_referrers', ...digestParts(subject, ''));
  }

  referrer(name: string, subject: string, digest: string): string {
    return join(this.referrersDir(name, subject), `${digest.replace(':', '-')}.json`);
  }
}

function digestParts(digest: string, suffix: string): [string, string] {
  const [algorithm, hex] = digest.split(':', 2) as [string, string];
  return [algorithm, `${hex}${suffix}`];
}

/** Upload ids come from URLs: keep them to one harmless path segment. */
function safeId(uploadId: string): string {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(uploadId)) return '_invalid_';
  return uploadId;
}

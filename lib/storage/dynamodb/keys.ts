/**
 * Every key of the metadata table, built here and only here. One table (lib/storage/aws-resources.ts), string
 * keys `pk` / `sk`, no index: each access pattern is one GetItem or one Query.
 *
 * | item                        | pk                 | sk                               | attributes                                    |
 * | --------------------------- | ------------------ | -------------------------------- | --------------------------------------------- |
 * | blob record (global)        | BLOB#<digest>      | BLOB                             | size, location                                |
 * | blob linked in a repository | REPO#<name>        | BLOB#<digest>                    | size, location                                |
 * | manifest                    | REPO#<name>        | MANIFEST#<digest>                | manifest fields¹, rev, pulledAt?⁵             |
 * | tag                         | REPO#<name>        | TAG#<tag>                        | manifest fields¹ of the manifest it points at, pulledAt?⁵ |
 * | referrer                    | REPO#<name>        | REFERRER#<subject>#<digest>      | descriptor (JSON)                             |
 * | tag history                 | REPO#<name>        | HISTORY#<tag>                    | changes (JSON, newest first), rev             |
 * | repository (catalog)        | REPOSITORIES       | <name>                           |                                               |
 * | upload session              | UPLOAD#<uploadId>  | UPLOAD                           | name, offset, version, createdAt, storage (JSON), ttl |
 * | large manifest body guard⁴  | BODY#<digest>      | BODY                             | gen, lastReferencedAt, doomed?, doomedAt?     |
 * | user                        | IDENTITY           | USER#<name>                      | doc (JSON), teams (SS)²                       |
 * | access token (hash only)    | IDENTITY           | TOKEN#<id>                       | doc (JSON)                                    |
 * | grant                       | IDENTITY           | GRANT#<user>#<glob>              | doc (JSON)                                    |
 * | team                        | IDENTITY           | TEAM#<name>                      | name, createdAt, members (SS), grants (M)³    |
 * | public glob                 | IDENTITY           | PUBLIC#<glob>                    | doc (JSON)                                    |
 * | OIDC trust                  | IDENTITY           | TRUST#<name>                     | doc (JSON)                                    |
 * | failed logins in a window   | FAILURES#<key>     | WINDOW                           | count, until, ttl                             |
 * | storage policy              | POLICIES           | <repository glob>                | doc (JSON)                                    |
 * | pull-through cache rule     | CACHE_RULES        | <prefix>                         | upstream, secret? (Secrets Manager name)      |
 * | cache rules' version        | CACHE_RULES        | #VERSION                         | version (compare-and-set of every rule write) |
 * | background blob copy        | CACHEFILL#<digest> | FILL                             | name, ttl (one copy at a time per blob)       |
 * | usage summary: which parts  | USAGE              | CURRENT                          | generation, parts, computedAt                 |
 * | usage summary: one part     | USAGE              | PART#<generation>#<index>        | data (gzip'd JSON, ≤ 350 KB)                  |
 *
 * Blob records, links and manifest items also carry the garbage-collection attributes of gc-attributes.ts.
 * ¹ manifest fields: digest, mediaType, size, subject?, artifactType?, annotations (JSON)?, and the bytes either
 *   inline (`content`, binary) or, above {@link INLINE_MANIFEST_LIMIT}, in the ManifestBodyStore by digest
 *   (`bodyStored`; items written before it existed say `contentKey`, read the same way: manifest-item.ts).
 * ² the teams the user belongs to: an index of the team items' `members`, which decide.
 * ³ `grants` maps glob → level. Members and grants share the team item's 400 KB: ~5,000 members with 64-byte
 *   names beside 100 grants. Token issuance reads whole team items, so a smaller team is a cheaper login.
 * ⁴ the garbage-collection marks of a body in the ManifestBodyStore (S3 `manifests/…`), which has no conditional
 *   delete: lib/storage/dynamodb/dynamodb-manifest-bodies.ts.
 * ⁵ the last pull recorded through that item, at most once a day (dynamodb-pulls.ts); a push rewrites the item without it.
 *
 * | access pattern                               | request                                                           |
 * | -------------------------------------------- | ----------------------------------------------------------------- |
 * | blob GET/HEAD (name, digest)                 | GetItem REPO#<name> / BLOB#<digest>                               |
 * | manifest GET by tag                          | GetItem REPO#<name> / TAG#<tag> (the manifest is in the tag item) |
 * | manifest GET by digest                       | GetItem REPO#<name> / MANIFEST#<digest>                           |
 * | record a pull (at most once a day per item)  | conditional UpdateItem of the tag or manifest item the GET read   |
 * | a repository's pulls and pushes (retention)  | Query REPO#<name>, begins_with MANIFEST# ∥ begins_with TAG#       |
 * | mount without `from`, upload dedup           | GetItem BLOB#<digest> / BLOB                                      |
 * | manifest PUT: its blobs and child manifests  | BatchGetItem REPO#<name> / BLOB#…, MANIFEST#… (≤ 100 keys each)   |
 * | tags list (n, last)                          | Query REPO#<name>, sk > TAG#<last>, begins_with TAG#, Limit n+1   |
 * | does the repository hold manifests           | Query REPO#<name>, begins_with MANIFEST#, Limit 1                 |
 * | catalog (n, last)                            | Query REPOSITORIES, sk > <last>, Limit n+1                        |
 * | referrers of a subject                       | Query REPO#<name>, begins_with REFERRER#<subject>#                |
 * | a tag's history / a repository's history     | GetItem HISTORY#<tag> / Query REPO#<name>, begins_with HISTORY#   |
 * | upload session                               | GetItem / conditional PutItem UPLOAD#<uploadId> / UPLOAD          |
 * | garbage collection: everything               | Scan, one page per call (lib/storage/dynamodb/dynamodb-gc-scan.ts) |
 * | a user's effective grants (token issuance)   | GetItem USER#<name> ∥ Query GRANT#<name>#, then BatchGetItem the  |
 * |                                              | TEAM#<team> items the user item lists (skipped when none)         |
 * | teams list                                   | Query IDENTITY, begins_with TEAM#                                 |
 * | trusts (an OIDC login, trust list)           | Query IDENTITY, begins_with TRUST#                                |
 * | storage policies (cached 5 s by each reader) | Query POLICIES                                                    |
 * | cache rules (cached 5 s by each reader)      | Query CACHE_RULES                                                 |
 * | a repository's links (quota check), facts    | Query REPO#<name>, begins_with BLOB# (MANIFEST#, TAG#, HISTORY#)  |
 * | usage report (HTTP API)                      | GetItem USAGE / CURRENT, Query USAGE, begins_with PART#<gen>#     |
 *
 * A repository's items share one partition (DynamoDB splits a hot item collection by sort key; no local index
 * stops it). Names are lowercase ASCII, tags ASCII, digests `alg:hex`: byte order is the spec's lexical order,
 * and `#` cannot occur in a name, tag or digest, so prefixes never overlap.
 */

/** A manifest's bytes go to the body store above this size, leaving room for the other attributes in DynamoDB's 400 KB item. */
export const INLINE_MANIFEST_LIMIT = 350_000;

export const BLOB_RECORD_SK = 'BLOB';
export const UPLOAD_SK = 'UPLOAD';
export const CATALOG_PK = 'REPOSITORIES';
export const TAG_PREFIX = 'TAG#';
export const MANIFEST_PREFIX = 'MANIFEST#';

export interface ItemKey {
  pk: string;
  sk: string;
}

export function blobRecordKey(digest: string): ItemKey {
  return { pk: `BLOB#${digest}`, sk: BLOB_RECORD_SK };
}

export function repositoryPartition(name: string): string {
  return `REPO#${name}`;
}

export function linkedBlobKey(name: string, digest: string): ItemKey {
  return { pk: repositoryPartition(name), sk: `BLOB#${digest}` };
}

export function manifestItemKey(name: string, digest: string): ItemKey {
  return { pk: repositoryPartition(name), sk: `${MANIFEST_PREFIX}${digest}` };
}

export function tagKey(name: string, tag: string): ItemKey {
  return { pk: repositoryPartition(name), sk: `${TAG_PREFIX}${tag}` };
}

/** The tag a tag item's sort key names. */
export function tagOf(sk: string): string {
  return sk.slice(TAG_PREFIX.length);
}

export const HISTORY_PREFIX = 'HISTORY#';

export function tagHistoryKey(name: string, tag: string): ItemKey {
  return { pk: repositoryPartition(name), sk: `${HISTORY_PREFIX}${tag}` };
}

/** The tag a history item's sort key names. */
export function historyOf(sk: string): string {
  return sk.slice(HISTORY_PREFIX.length);
}

export function referrersPrefix(subject: string): string {
  return `REFERRER#${subject}#`;
}

export function referrerKey(name: string, subject: string, digest: string): ItemKey {
  return { pk: repositoryPartition(name), sk: `${referrersPrefix(subject)}${digest}` };
}

export function catalogKey(name: string): ItemKey {
  return { pk: CATALOG_PK, sk: name };
}

/** The garbage-collection guard of a large manifest's body (one per digest, shared like the body). */
export function manifestBodyGuardKey(digest: string): ItemKey {
  return { pk: `BODY#${digest}`, sk: 'BODY' };
}

export function uploadKey(uploadId: string): ItemKey {
  return { pk: `UPLOAD#${uploadId}`, sk: UPLOAD_SK };
}

/**
 * Identities share one partition: they are few (a team) and read only at token time, so a Query per listing is
 * enough (lib/storage/dynamodb/dynamodb-identity-store.ts).
 */
export const IDENTITY_PK = 'IDENTITY';
export const IdentitySk = {
  user: (name: string) => `USER#${name}`,
  token: (id: string) => `TOKEN#${id}`,
  grant: (user: string, glob: string) => `GRANT#${user}#${glob}`,
  /** All grants, or one user's: `#` cannot occur in a user name, so prefixes never overlap. */
  grantPrefix: (user?: string) => (user === undefined ? 'GRANT#' : `GRANT#${user}#`),
  publicGlob: (glob: string) => `PUBLIC#${glob}`,
  team: (name: string) => `TEAM#${name}`,
  teamPrefix: 'TEAM#',
  trust: (name: string) => `TRUST#${name}`,
  trustPrefix: 'TRUST#',
  userPrefix: 'USER#',
  tokenPrefix: 'TOKEN#',
  publicPrefix: 'PUBLIC#',
} as const;

export function failureWindowKey(key: string): ItemKey {
  return { pk: `FAILURES#${key}`, sk: 'WINDOW' };
}

/** Storage policies: a handful of items, read whole (lib/storage/dynamodb/dynamodb-policy-store.ts). */
export const POLICIES_PK = 'POLICIES';

export function policyKey(glob: string): ItemKey {
  return { pk: POLICIES_PK, sk: glob };
}

/**
 * Pull-through cache rules: a handful of items read whole (lib/storage/dynamodb/dynamodb-cache-rule-store.ts). `#`
 * cannot occur in a prefix (a repository name), so the version item never collides with a rule.
 */
export const CACHE_RULES_PK = 'CACHE_RULES';
export const CACHE_RULES_VERSION_SK = '#VERSION';

export function cacheRuleKey(prefix: string): ItemKey {
  return { pk: CACHE_RULES_PK, sk: prefix };
}

/** A background copy of a cached blob in progress (lambdas/cache-blob-copy.ts): at most one per digest at a time. */
export function cacheFillKey(digest: string): ItemKey {
  return { pk: `CACHEFILL#${digest}`, sk: 'FILL' };
}

/** The stored usage summary (lib/storage/dynamodb/dynamodb-usage-summaries.ts): a pointer item and gzip'd parts. */
export const USAGE_PK = 'USAGE';
export const BLOB_LINK_PREFIX = 'BLOB#';
export const USAGE_PART_PREFIX = 'PART#';

export function usageCurrentKey(): ItemKey {
  return { pk: USAGE_PK, sk: 'CURRENT' };
}

/** Parts of one generation, in order: the index is zero-padded so that the sort key orders them. */
export function usagePartKey(generation: string, index: number): ItemKey {
  return { pk: USAGE_PK, sk: `${usagePartsPrefix(generation)}${String(index).padStart(5, '0')}` };
}

export function usagePartsPrefix(generation?: string): string {
  return generation === undefined ? USAGE_PART_PREFIX : `${USAGE_PART_PREFIX}${generation}#`;
}

/**
 * Tag history: what each tag pointed at before, who changed it, and when. Domain types and the port; the
 * registry records through {@link TagVersions} (tag-versions.ts), the stores live in lib/storage/<backend>/.
 */

/** How many changes per tag stay readable, and whose manifests the retention rules keep. */
export const DEFAULT_HISTORY_DEPTH = 10;

/** Who made a change: a user, an OIDC identity (`oidc:<trust>:<sub>`), or `anonymous`; the API token id if known. */
export interface Actor {
  subject: string;
  tokenId?: string;
}

export const ANONYMOUS: Actor = { subject: 'anonymous' };
/** Garbage collection and the retention rules it applies. */
export const GC_ACTOR: Actor = { subject: 'gc' };

/** What the transport knows about the request that changes a tag. */
export interface ChangeContext {
  actor: Actor;
  userAgent?: string;
  /** Why, when the change was not a client's request (`removed by retention: …`). */
  reason?: string;
}

export type TagAction = 'created' | 'moved' | 'deleted';

/** One change of one tag. `previous` is absent for `created`, `digest` for `deleted`. */
export interface TagChange {
  tag: string;
  /** RFC 3339, milliseconds. */
  at: string;
  action: TagAction;
  previous?: string;
  digest?: string;
  actor: Actor;
  userAgent?: string;
  /** Why, when not a client's request: `removed by retention: <the rule>`, `filled from <upstream>/<name>:<tag>`. */
  reason?: string;
}

/** The pull-through cache, pointing a cached tag at what its upstream serves. */
export const CACHE_ACTOR: Actor = { subject: 'cache' };

/** A cache fill's change of a tag: `ocireg history` shows where it came from. */
export function filledFrom(origin: string): ChangeContext {
  return { actor: CACHE_ACTOR, reason: `filled from ${origin}` };
}

/** Who removes what retention rules expire: `ocireg history` shows it with the rule's reason. */
export function collectedBy(reason: string): ChangeContext {
  return { actor: GC_ACTOR, reason: `removed by retention: ${reason}` };
}

/** When, who and why: what every entry of one write carries. */
export interface ChangeStamp extends ChangeContext {
  /** RFC 3339, milliseconds. */
  at: string;
}

/**
 * Tag history that travels with a tag write (MetadataStore.putManifest, deleteTag, deleteManifest): the store appends
 * one change per tag the write creates, moves or deletes, with `previous` read inside that write — so each entry's
 * `previous` is the `digest` of the entry before it — and trims each tag to `depth`, in the same atomic write as the
 * tag: a write that fails leaves neither the tag change nor its entry.
 */
export interface HistoryWrite {
  depth: number;
  stamp: ChangeStamp;
}

/** The change a store records for one tag going from `previous` to `digest` (undefined: absent). */
export function stampedChange(stamp: ChangeStamp, tag: string, previous: string | undefined, digest: string | undefined): TagChange {
  const change: TagChange = { tag, at: stamp.at, action: previous === undefined ? 'created' : digest === undefined ? 'deleted' : 'moved', actor: stamp.actor };
  if (previous !== undefined) change.previous = previous;
  if (digest !== undefined) change.digest = digest;
  if (stamp.userAgent !== undefined) change.userAgent = stamp.userAgent;
  if (stamp.reason !== undefined) change.reason = stamp.reason;
  return change;
}

/**
 * The history of every tag, per repository. Each tag keeps its newest `depth` changes (older ones are dropped as
 * new ones arrive); entries are returned newest first.
 */
export interface TagHistoryStore {
  /** The number of changes kept per tag. */
  readonly depth: number;
  /**
   * Appends each change to its tag's history, dropping what falls beyond `depth`. Changes of one tag keep their order.
   * Only for changes another write already committed (garbage collection's report of a tag it expired): the registry's
   * own tag writes record their changes in the same write, through the metadata store's {@link HistoryWrite}.
   */
  append(name: string, changes: TagChange[]): Promise<void>;
  /** A tag's kept changes, newest first; empty when it never changed (or predates history). */
  list(name: string, tag: string): Promise<TagChange[]>;
  /** Every tag of the repository with history, each with its kept changes newest first. */
  listRepository(name: string): Promise<Map<string, TagChange[]>>;
}

/**
 * A tag's rollback targets: the digests its newest `depth` changes name (new and previous), so `ocireg rollback
 * --steps N` (N ≤ depth) finds its manifest. The retention planner keeps those of each tag it keeps, with `depth`
 * the policy's `keepHistory` (retention-snapshot.ts).
 */
export function rollbackTargets(changes: readonly TagChange[], depth: number): string[] {
  const digests = new Set<string>();
  for (const change of changes.slice(0, depth)) {
    if (change.digest !== undefined) digests.add(change.digest);
    if (change.previous !== undefined) digests.add(change.previous);
  }
  return [...digests];
}

/** Every tag's rollback targets in repository `name`, within what the store keeps. */
export async function retainedDigests(history: TagHistoryStore, name: string): Promise<Set<string>> {
  return new Set([...(await history.listRepository(name)).values()].flatMap((changes) => rollbackTargets(changes, history.depth)));
}

/** Newest first, trimmed: what a store keeps after appending `change` to `kept` (already newest first). */
export function withChange(kept: TagChange[], change: TagChange, depth: number): TagChange[] {
  return [change, ...kept].slice(0, depth);
}

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
  /** Why, when not a client's request: `removed by retention: <the rule>`. */
  reason?: string;
}

/**
 * The history of every tag, per repository. Each tag keeps its newest `depth` changes (older ones are dropped as
 * new ones arrive); entries are returned newest first.
 */
export interface TagHistoryStore {
  /** The number of changes kept per tag. */
  readonly depth: number;
  /** Appends each change to its tag's history, dropping what falls beyond `depth`. Changes of one tag keep their order. */
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

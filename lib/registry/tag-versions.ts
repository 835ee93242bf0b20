import { referencesOf } from './manifest.ts';
import { isDigest, parseDigest } from './digest.ts';
import { OciError, manifestUnknown, unsupported } from './errors.ts';
import { registryEvent, type EventAction, type EventDetail, type EventSink, type RegistryEvent } from './events.ts';
import { putManifestWithPolicy } from './immutable-tags.ts';
import { assertName, assertTag } from './names.ts';
import type { PolicyCache } from './policy-cache.ts';
import type { ManifestReferences, MetadataStore } from './ports.ts';
import { ANONYMOUS, collectedBy, type ChangeContext, type HistoryWrite, type TagChange, type TagHistoryStore } from './tag-history.ts';
import type { Page, PageRequest, StoredManifest } from './types.ts';
import { listTags } from './listings.ts';
import type { GcRemoval } from './gc/gc-report.ts';

export interface TagVersionsOptions {
  metadata: MetadataStore;
  /** Without it nothing is recorded and the history, rollback and details answer UNSUPPORTED. */
  history?: TagHistoryStore;
  events?: EventSink;
  /** Told when publishing events fails (the change stands). */
  onEventFailure?: (error: unknown, events: RegistryEvent[]) => void;
  /** Storage policies (immutable tags, quotas); without them every tag may move and nothing is limited. */
  policies?: PolicyCache;
}

/** A tag as `ocireg ls` shows it. */
export interface TagDetails {
  tag: string;
  digest: string;
  mediaType: string;
  /** The manifest and what it references directly (config and layers, or child manifests), bytes. */
  size: number;
  /** When the tag was last set (its newest recorded change); absent when it predates history. */
  pushedAt?: string;
  /** The manifest's last recorded pull, by tag or digest (to the day: last-pull.ts); absent when never recorded. */
  lastPulledAt?: string;
}

export type RollbackTarget = { to: string } | { steps: number };

/**
 * Versions of tags: every tag write of the registry (push, rollback, promotion, DELETE) goes through here, so each
 * records its changes in the tag history and publishes its event. The history entry is part of the tag's own write
 * (the metadata store's {@link HistoryWrite}): a write that fails or a crash leaves neither, and each entry's
 * `previous` is the `digest` of the entry before it. A `rollback --steps` still checks that the history ends where the
 * tag points: a tag changed by a write that records nothing (data from before the history) is refused with TAG_CONFLICT rather than guessed at.
 *
 * Rollback against a concurrent push:
 * ```
 *   rollback t --steps 1                       push t → d3
 *   ─────────────────────────────────────────  ─────────────────────
 *   read t: d2; history: [d1→d2, …]
 *                                              t → d3 + history [d2→d3, d1→d2] (one write)
 *   put t → d1 + history [d3→d1, d2→d3, …]     (the push is undone, and the entry says so: previous d3)
 * ```
 * The window is two requests wide; the metadata port has no compare-and-set on tags, so the loser is visible in
 * the history (and undone by one more rollback) rather than prevented.
 */
export class TagVersions {
  readonly #metadata: MetadataStore;
  readonly #policies: PolicyCache | undefined;
  readonly #history: TagHistoryStore | undefined;
  readonly #events: EventSink | undefined;
  readonly #onEventFailure: (error: unknown, events: RegistryEvent[]) => void;

  constructor(options: TagVersionsOptions) {
    this.#metadata = options.metadata;
    this.#policies = options.policies;
    this.#history = options.history;
    this.#events = options.events;
    this.#onEventFailure = options.onEventFailure ?? (() => undefined);
  }

  /**
   * Stores `manifest` and points `tags` at it (a push, a rollback, a promotion), under the repository's immutable-tag
   * policy, with each tag's change in the same write; then publishes one event.
   */
  async putManifest(name: string, manifest: StoredManifest, tags: string[], references: ManifestReferences, context: ChangeContext | undefined, action: EventAction = 'PUSH'): Promise<void> {
    const before = await this.#current(name, tags);
    const history = this.#historyWrite(context);
    await putManifestWithPolicy(this.#metadata, this.#policies, name, manifest, tags, { references, ...(history ? { history } : {}) });
    const moved = [...before].filter(([, previous]) => previous !== manifest.digest);
    if (action === 'TAG' && moved.length === 0) return;
    const detail: EventDetail = { 'action-type': action, result: 'SUCCESS', 'repository-name': name, 'image-digest': manifest.digest, 'media-type': manifest.mediaType };
    if (tags.length > 0) Object.assign(detail, { 'image-tag': tags[0], 'image-tags': tags });
    const previous = moved.find(([, digest]) => digest !== undefined)?.[1];
    if (previous !== undefined) detail['previous-digest'] = previous;
    await this.#publish(detail, context);
  }

  /**
   * A pull-through cache fill (pull-through-cache.ts): the upstream's manifest stored and `tags` pointed at it, each
   * tag's change in the same write, as for a push, so a cached tag's history shows every digest the cache followed.
   * No storage policy applies (the upstream owns these tags: an immutable-tag rule must not stop the cache following
   * them) and no event is published (a fill is part of a pull).
   */
  async recordFill(name: string, manifest: StoredManifest, tags: string[], context: ChangeContext): Promise<void> {
    const history = this.#historyWrite(context);
    await this.#metadata.putManifest(name, manifest, tags, history ? { history } : {});
  }

  /** DELETE of a tag: the tag goes, its `deleted` change with it; false when there was no such tag. */
  async deleteTag(name: string, tag: string, context: ChangeContext | undefined): Promise<boolean> {
    const previous = (await this.#current(name, [tag])).get(tag);
    const history = this.#historyWrite(context);
    if (!(await this.#metadata.deleteTag(name, tag, undefined, history ? { history } : {}))) return false;
    await this.#publish({ 'action-type': 'DELETE', result: 'SUCCESS', 'repository-name': name, 'image-digest': previous ?? '', 'image-tag': tag, 'image-tags': [tag], 'artifact-type': 'tag' }, context);
    return true;
  }

  /** DELETE of a manifest by digest: the manifest and the tags pointing at it go, each tag's `deleted` change with it. */
  async deleteManifest(name: string, digest: string, context: ChangeContext | undefined): Promise<boolean> {
    // The tags for the event: with the history written in the tag writes, a tag's newest change names where it points.
    const tags: string[] = [];
    for (const [tag, kept] of this.#history && this.#events ? await this.#history.listRepository(name) : []) if (kept[0]?.digest === digest) tags.push(tag);
    const history = this.#historyWrite(context);
    if (!(await this.#metadata.deleteManifest(name, digest, history ? { history } : {}))) return false;
    const detail: EventDetail = { 'action-type': 'DELETE', result: 'SUCCESS', 'repository-name': name, 'image-digest': digest, 'artifact-type': 'manifest' };
    if (tags.length > 0) Object.assign(detail, { 'image-tag': tags[0], 'image-tags': tags });
    await this.#publish(detail, context);
    return true;
  }

  /**
   * For garbage collection's removal callback (runGc's `onRemoved`, never in a dry run): one GC event per manifest,
   * per blob link (a blob leaving a repository) and per tag a retention rule expired; global blob records, uploads
   * and stray bytes belong to no repository and publish nothing. An expired tag is also written to the tag's history
   * (`removed by retention: <reason>`) unless the delete that removed it recorded it already.
   */
  async recordCollected(removal: GcRemoval): Promise<void> {
    if (removal.kind !== 'manifest' && removal.kind !== 'link' && removal.kind !== 'tag') return;
    if (removal.kind === 'tag' && this.#history) {
      const newest = (await this.#history.list(removal.name, removal.tag))[0];
      if (!(newest?.action === 'deleted' && newest.previous === removal.digest)) {
        await this.#history.append(removal.name, [change(removal.tag, new Date(), 'deleted', removal.digest, undefined, collectedBy(removal.reason))]);
      }
    }
    const artifact = removal.kind === 'link' ? 'blob' : removal.kind;
    const detail: EventDetail = { 'action-type': 'GC', result: 'SUCCESS', 'repository-name': removal.name, 'image-digest': removal.digest, 'artifact-type': artifact };
    if (removal.kind === 'tag') Object.assign(detail, { 'image-tag': removal.tag, 'image-tags': [removal.tag] });
    if (removal.kind !== 'link') detail.reason = removal.reason;
    await this.#publish(detail, undefined);
  }

  /** A tag's kept changes, newest first. */
  async history(name: string, tag: string): Promise<TagChange[]> {
    assertName(name);
    assertTag(tag);
    return this.#require().list(name, tag);
  }

  /**
   * Points `tag` back at an earlier manifest: `to` a digest, or `steps` changes back (1 = before the newest change).
   * Recorded as a change like any other. Returns the digests before and after.
   */
  async rollback(name: string, tag: string, target: RollbackTarget, context?: ChangeContext): Promise<{ previous: string | undefined; digest: string }> {
    assertName(name);
    assertTag(tag);
    const history = this.#require();
    const current = (await this.#metadata.resolveTag(name, tag))?.digest;
    let digest: string;
    if ('to' in target) {
      parseDigest(target.to);
      digest = target.to;
    } else {
      const { steps } = target;
      if (!Number.isInteger(steps) || steps < 1 || steps > history.depth) {
        throw unsupported(`steps must be an integer from 1 to ${history.depth} (the history kept per tag), got ${steps}`, { steps });
      }
      const changes = await history.list(name, tag);
      if (changes[0]?.digest !== current) {
        throw tagConflict(`the history of ${name}:${tag} does not end where the tag points (${current ?? 'nowhere'}): a change went unrecorded; roll back with --to <digest>`, { name, tag, current, newest: changes[0]?.digest });
      }
      const back = changes[steps - 1]?.previous;
      if (back === undefined) {
        throw manifestUnknownWith(name, tag, `${name}:${tag} has no version ${steps} step(s) back: its history holds ${changes.length} change(s)`, { steps, kept: changes.length });
      }
      digest = back;
    }
    const manifest = await this.#metadata.getManifest(name, digest);
    if (!manifest) throw manifestUnknown(name, digest);
    if (digest === current) return { previous: current, digest };
    await this.putManifest(name, manifest, [tag], referencesOf(manifest), context, 'TAG');
    return { previous: current, digest };
  }

  /** Server-side promotion: points each of `tags` at the manifest `reference` names (tag or digest). No blob moves. */
  async promote(name: string, reference: string, tags: string[], context?: ChangeContext): Promise<{ digest: string; tags: string[] }> {
    assertName(name);
    if (tags.length === 0) throw unsupported('name at least one new tag', { tags });
    for (const tag of tags) assertTag(tag);
    const manifest = isDigest(reference)
      ? (parseDigest(reference), await this.#metadata.getManifest(name, reference))
      : (assertTag(reference), await this.#metadata.resolveTag(name, reference));
    if (!manifest) throw manifestUnknown(name, reference);
    await this.putManifest(name, manifest, tags, referencesOf(manifest), context, 'TAG');
    return { digest: manifest.digest, tags };
  }

  /** One bounded page of tags with what each points at, its size and when it was set. */
  async details(name: string, page: PageRequest): Promise<Page<TagDetails>> {
    const tags = await listTags(this.#metadata, name, page);
    const [kept, activity] = await Promise.all([this.#history ? this.#history.listRepository(name) : new Map<string, TagChange[]>(), this.#metadata.manifestActivity(name)]);
    const items = await Promise.all(
      tags.items.map(async (tag): Promise<TagDetails | undefined> => {
        const manifest = await this.#metadata.resolveTag(name, tag);
        if (!manifest) return undefined;
        const details: TagDetails = { tag, digest: manifest.digest, mediaType: manifest.mediaType, size: imageSize(manifest) };
        const newest = kept.get(tag)?.[0];
        if (newest?.digest === manifest.digest) details.pushedAt = newest.at;
        const pulledAt = activity.get(manifest.digest)?.pulledAt;
        if (pulledAt !== undefined) details.lastPulledAt = new Date(pulledAt).toISOString();
        return details;
      }),
    );
    return { items: items.filter((item) => item !== undefined), hasMore: tags.hasMore };
  }

  /** What each tag points at now, read before a write changes it, for the event (read only when events are published). */
  async #current(name: string, tags: string[]): Promise<Map<string, string | undefined>> {
    const digests = new Map<string, string | undefined>(tags.map((tag) => [tag, undefined]));
    if (!this.#events) return digests;
    await Promise.all(tags.map(async (tag) => digests.set(tag, (await this.#metadata.resolveTag(name, tag))?.digest)));
    return digests;
  }

  /** The history a tag write made for `context` carries; undefined when no history is kept. */
  #historyWrite(context: ChangeContext | undefined): HistoryWrite | undefined {
    if (!this.#history) return undefined;
    return { depth: this.#history.depth, stamp: { ...(context ?? { actor: ANONYMOUS }), at: new Date().toISOString() } };
  }

  async #publish(detail: EventDetail, context: ChangeContext | undefined): Promise<void> {
    if (!this.#events) return;
    if (context) {
      detail.actor = context.actor;
      if (context.userAgent !== undefined) detail['user-agent'] = context.userAgent;
    }
    const events = [registryEvent(detail)];
    try {
      await this.#events.publish(events);
    } catch (error) {
      this.#onEventFailure(error, events);
    }
  }

  #require(): TagHistoryStore {
    if (!this.#history) throw unsupported('tag history is not kept by this registry');
    return this.#history;
  }
}

function change(tag: string, at: Date, action: TagChange['action'], previous: string | undefined, digest: string | undefined, context: ChangeContext | undefined): TagChange {
  const entry: TagChange = { tag, at: at.toISOString(), action, actor: context?.actor ?? ANONYMOUS };
  if (previous !== undefined) entry.previous = previous;
  if (digest !== undefined) entry.digest = digest;
  if (context?.userAgent !== undefined) entry.userAgent = context.userAgent;
  if (context?.reason !== undefined) entry.reason = context.reason;
  return entry;
}

/** The manifest's bytes plus the sizes of the descriptors it lists (config and layers, or child manifests). */
function imageSize(manifest: StoredManifest): number {
  let size = manifest.content.byteLength;
  try {
    const json = JSON.parse(new TextDecoder().decode(manifest.content)) as { config?: { size?: number }; layers?: { size?: number }[]; manifests?: { size?: number }[] };
    for (const descriptor of [json.config, ...(json.layers ?? []), ...(json.manifests ?? [])]) {
      if (typeof descriptor?.size === 'number') size += descriptor.size;
    }
  } catch {
    // Stored manifests were validated as JSON when pushed; the bytes alone are the size otherwise.
  }
  return size;
}

export const tagConflict = (message: string, detail?: unknown) => new OciError('TAG_CONFLICT', message, detail);

function manifestUnknownWith(name: string, tag: string, message: string, detail: Record<string, unknown>): OciError {
  return new OciError('MANIFEST_UNKNOWN', message, { name, reference: tag, ...detail });
}


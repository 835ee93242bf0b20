import { referencesOf } from './manifest.ts';
import { isDigest, parseDigest } from './digest.ts';
import { OciError, manifestUnknown, unsupported } from './errors.ts';
import { registryEvent, type EventAction, type EventDetail, type EventSink, type RegistryEvent } from './events.ts';
import { putManifestWithPolicy } from './immutable-tags.ts';
import { assertName, assertTag } from './names.ts';
import type { PolicyCache } from './policy-cache.ts';
import type { MetadataStore } from './ports.ts';
import { ANONYMOUS, GC_ACTOR, type ChangeContext, type TagChange, type TagHistoryStore } from './tag-history.ts';
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
 * Versions of tags: records every tag change in the history store and publishes it as an event, and moves tags
 * server-side (rollback, promotion) by re-pointing them at a stored manifest: no blob moves.
 *
 * The history is written right after the metadata write, not in the same write. A crash in between leaves the
 * tag changed and its change unrecorded; the next change's `previous` then differs from the newest entry's
 * `digest`, which is how `rollback --steps` notices a gap and refuses (TAG_CONFLICT) rather than guess.
 *
 * Rollback against a concurrent push:
 * ```
 *   rollback t --steps 1                       push t → d3
 *   ─────────────────────────────────────────  ─────────────────────
 *   read t: d2; history: [d1→d2, …]
 *                                              t → d3; history: [d2→d3, d1→d2]
 *   put t → d1   (the push is undone)
 *   history: [d3→d1, d2→d3, …]  (recorded: visible, and undone by one more rollback)
 * ```
 * The window is two requests wide; the metadata port has no compare-and-set on tags, so the loser is visible in
 * the history rather than prevented.
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

  /** What each tag points at now, read before a write changes it (read only when there is a history or an event to write). */
  async current(name: string, tags: string[]): Promise<Map<string, string | undefined>> {
    const digests = new Map<string, string | undefined>(tags.map((tag) => [tag, undefined]));
    if (!this.#history && !this.#events) return digests;
    await Promise.all(tags.map(async (tag) => digests.set(tag, (await this.#metadata.resolveTag(name, tag))?.digest)));
    return digests;
  }

  /** After a manifest PUT (or a rollback or promotion): records each tag's change and publishes one event. */
  async recordPut(name: string, manifest: StoredManifest, before: Map<string, string | undefined>, context: ChangeContext | undefined, action: EventAction = 'PUSH'): Promise<void> {
    const at = new Date();
    const changes: TagChange[] = [];
    for (const [tag, previous] of before) {
      if (previous === manifest.digest) continue;
      changes.push(change(tag, at, previous === undefined ? 'created' : 'moved', previous, manifest.digest, context));
    }
    if (this.#history && changes.length > 0) await this.#history.append(name, changes);
    const tags = [...before.keys()];
    const detail: EventDetail = { 'action-type': action, result: 'SUCCESS', 'repository-name': name, 'image-digest': manifest.digest, 'media-type': manifest.mediaType };
    if (tags.length > 0) Object.assign(detail, { 'image-tag': tags[0], 'image-tags': tags });
    const previous = [...before.values()].find((digest) => digest !== undefined && digest !== manifest.digest);
    if (previous !== undefined) detail['previous-digest'] = previous;
    if (action === 'TAG' && changes.length === 0) return;
    await this.#publish(detail, context);
  }

  /** After a tag DELETE. */
  async recordTagDeleted(name: string, tag: string, previous: string | undefined, context: ChangeContext | undefined): Promise<void> {
    if (this.#history && previous !== undefined) await this.#history.append(name, [change(tag, new Date(), 'deleted', previous, undefined, context)]);
    const detail: EventDetail = { 'action-type': 'DELETE', result: 'SUCCESS', 'repository-name': name, 'image-digest': previous ?? '', 'image-tag': tag, 'image-tags': [tag], 'artifact-type': 'tag' };
    await this.#publish(detail, context);
  }

  /** After a manifest DELETE by digest: the tags whose newest change named it were deleted with it. */
  async recordManifestDeleted(name: string, digest: string, context: ChangeContext | undefined): Promise<void> {
    const tags: string[] = [];
    if (this.#history) {
      const at = new Date();
      const changes: TagChange[] = [];
      for (const [tag, kept] of await this.#history.listRepository(name)) {
        if (kept[0]?.digest !== digest) continue;
        tags.push(tag);
        changes.push(change(tag, at, 'deleted', digest, undefined, context));
      }
      if (changes.length > 0) await this.#history.append(name, changes);
    }
    const detail: EventDetail = { 'action-type': 'DELETE', result: 'SUCCESS', 'repository-name': name, 'image-digest': digest, 'artifact-type': 'manifest' };
    if (tags.length > 0) Object.assign(detail, { 'image-tag': tags[0], 'image-tags': tags });
    await this.#publish(detail, context);
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
    const before = new Map([[tag, current]]);
    await putManifestWithPolicy(this.#metadata, this.#policies, name, manifest, [tag], referencesOf(manifest));
    await this.recordPut(name, manifest, before, context, 'TAG');
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
    const before = await this.current(name, tags);
    await putManifestWithPolicy(this.#metadata, this.#policies, name, manifest, tags, referencesOf(manifest));
    await this.recordPut(name, manifest, before, context, 'TAG');
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

/** Who removes what retention rules expire: `ocireg history` shows it with the rule's reason. */
export function collectedBy(reason: string): ChangeContext {
  return { actor: GC_ACTOR, reason: `removed by retention: ${reason}` };
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


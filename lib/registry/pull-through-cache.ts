import { BriefCache } from './brief-cache.ts';
import { ruleFor } from './cache-rules.ts';
import { ClientFeed } from './client-feed.ts';
import { digestOf, isDigest, parseDigest } from './digest.ts';
import { blobUnknown, digestInvalid, errorMessage, isOciError, manifestUnknown, OciError } from './errors.ts';
import { parseManifest } from './manifest.ts';
import { isValidTag } from './names.ts';
import { filledFrom, type ChangeContext } from './tag-history.ts';
import type { BlobRead, BlobStore, CacheRule, CacheRuleStore, MetadataStore, Upstream } from './ports.ts';
import { BlobFills, type NotKept } from './pull-through-fills.ts';
import type { QuotaGuard } from './quota.ts';
import { CacheLinks } from './cache-links.ts';
import type { BlobInFlight, BlobRecord, StoredManifest } from './types.ts';

export interface PullThroughCacheOptions {
  rules: CacheRuleStore;
  blobs: BlobStore;
  metadata: MetadataStore;
  /** The upstream of a rule (one client per rule, so its token is reused). */
  upstreamFor: (rule: CacheRule) => Upstream;
  /** A tag's cached manifest is served without asking the upstream for this long after the last check. */
  revalidateAfterMs: number;
  /** How long a read list of rules is used before the store is read again. @default {@link CACHE_RULES_TTL_MS} */
  rulesTtlMs?: number;
  /**
   * How a blob miss is served where a response cannot stream a layer (a Lambda behind API Gateway: 30 s, 6 MB).
   * Absent: streamed to the client while stored (`ocireg serve`).
   */
  missPolicy?: BlobMissPolicy;
  /** Receives a line when the upstream cannot answer and cached content is served instead, or a blob is refused. */
  log?: (entry: Record<string, unknown>) => void;
  /** Repository quotas (quota.ts): what a cached repository keeps; a pull is served over its quota all the same. */
  quota?: QuotaGuard;
  now?: () => number;
}

/** How long the rules read from the store are used: how soon `ocireg cache add|rm` applies to a running registry. */
export const CACHE_RULES_TTL_MS = 5_000;

/** What storage holds for a manifest reference, and how a manifest fetched for it is stored (TagVersions.recordFill). */
export interface CachedManifests {
  cached(): Promise<StoredManifest | undefined>;
  /** Stores `manifest` and points `tags` at it, each tag's change in its history with `context`. */
  store(manifest: StoredManifest, tags: string[], context: ChangeContext): Promise<void>;
}

/** A blob miss as a {@link BlobMissPolicy} sees it: the upstream's declared size, and a URL clients may read it from. */
export interface BlobMiss {
  rule: CacheRule;
  /** The cached repository (`hub/library/alpine`) and the upstream's name for it (`library/alpine`). */
  name: string;
  upstreamName: string;
  digest: string;
  /** The upstream's Content-Length; undefined when it declared none. */
  size: number | undefined;
  /** From {@link Upstream.locateBlob}: where a client can GET the bytes without this registry's credentials. */
  url: string | undefined;
}

/**
 * `copy`: store the blob within this request, then serve the stored blob. `elsewhere`: the policy has arranged a copy
 * outside this request (a background invocation); this client reads `read` meanwhile (a redirect), or, without one,
 * is told to come back (503 UNAVAILABLE).
 */
export type BlobMissPlan = { kind: 'copy' } | { kind: 'elsewhere'; read?: BlobRead };

/** Decides, per miss, whether a blob is copied within the request or elsewhere (lambdas/cache-blob-miss-policy.ts). */
export interface BlobMissPolicy {
  plan(miss: BlobMiss): Promise<BlobMissPlan>;
}

/**
 * The pull-through cache: repositories under a rule's prefix are filled from the upstream on a miss and then served
 * from storage like any other content (same grants, same GC: a cached blob is an ordinary blob record and link,
 * a cached manifest an ordinary manifest and tag). Pushes to them are refused: the upstream owns their content.
 *
 * Manifests by digest are immutable: fetched once, never re-checked. A tag is re-checked by HEAD at most once per
 * `revalidateAfterMs` (in this process); when the upstream cannot answer, the cached manifest is served and logged.
 * Blobs are fetched on the first pull of each and streamed to that client while the store writes and verifies them
 * (timeline at BlobFills.#copy in pull-through-fills.ts); only a verified blob is recorded and linked.
 */
export class PullThroughCache {
  readonly #options: PullThroughCacheOptions;
  readonly #now: () => number;
  /** Every request asks whether its repository is cached: the rules are read once per few seconds, not per request. */
  readonly #rules: BriefCache<CacheRule[]>;
  /** `name:tag` → when the upstream last confirmed (or gave) the cached manifest. */
  readonly #checkedAt = new Map<string, number>();
  /** Blob copies in progress in this process (pull-through-fills.ts). */
  readonly #fills: BlobFills;
  readonly #links: CacheLinks;

  constructor(options: PullThroughCacheOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#rules = new BriefCache(() => options.rules.list(), options.rulesTtlMs ?? CACHE_RULES_TTL_MS, this.#now);
    this.#links = new CacheLinks(options.metadata, options.quota, options.log);
    this.#fills = new BlobFills({ blobs: options.blobs, metadata: options.metadata, log: options.log, links: this.#links, now: this.#now });
  }

  /** The rule `name` falls under, or undefined: an ordinary repository. */
  async ruleOf(name: string): Promise<{ rule: CacheRule; upstreamName: string } | undefined> {
    return ruleFor(await this.#rules.get(), name);
  }

  /** DENIED when `name` is a cached repository: pushes and deletes belong to the upstream. */
  async assertWritable(name: string): Promise<void> {
    const match = await this.ruleOf(name);
    if (match) {
      throw new OciError('DENIED', `repository ${name} is a read-only pull-through cache of ${match.rule.upstream}/${match.upstreamName}: push to the upstream instead`, {
        name,
        upstream: match.rule.upstream,
      });
    }
  }

  /**
   * The manifest of a cached repository: from storage when fresh enough, else from the upstream (then stored).
   * Undefined when `name` is not under a rule. A tag the upstream moved is moved here with a history entry
   * `filled from <upstream>/<name>:<tag>`, by the cache as actor.
   */
  async getManifest(name: string, reference: string, manifests: CachedManifests): Promise<StoredManifest | undefined> {
    const match = await this.ruleOf(name);
    if (!match) return undefined;
    const upstream = this.#options.upstreamFor(match.rule);
    const local = await manifests.cached();
    if (isDigest(reference)) {
      if (local) return local;
      parseDigest(reference);
      return this.#fetchManifest(upstream, name, match, reference, local, manifests);
    }
    if (!isValidTag(reference)) return undefined;
    const key = `${name}:${reference}`;
    const checked = this.#checkedAt.get(key);
    if (local && checked !== undefined && this.#now() - checked < this.#options.revalidateAfterMs) return local;
    if (local) {
      let digest: string | undefined;
      try {
        digest = await upstream.headManifest(match.upstreamName, reference);
      } catch (error) {
        return this.#servedStale(name, reference, local, error);
      }
      if (digest === local.digest) {
        this.#checkedAt.set(key, this.#now());
        return local;
      }
      if (digest === undefined) return this.#servedStale(name, reference, local, new Error('the upstream no longer has this tag'));
    }
    return this.#fetchManifest(upstream, name, match, reference, local, manifests);
  }

  /**
   * A blob of a cached repository, stored before this returns: linked from storage when any repository holds it,
   * else copied from the upstream whole (HEAD, a Range, or another fill of it in progress is awaited). A blob the
   * miss policy copies elsewhere is not here yet: answered {@link BlobInFlight} with the upstream's declared size
   * (UNAVAILABLE when it declared none).
   */
  async getBlob(name: string, digest: string): Promise<BlobRecord | BlobInFlight | undefined> {
    const match = await this.ruleOf(name);
    if (!match) return undefined;
    const stored = await this.#stored(name, digest);
    if (stored) return stored;
    if (!this.#fills.running(digest) && this.#options.missPolicy) {
      const plan = await this.#plan(match, name, digest);
      if (plan.kind === 'elsewhere') {
        if (plan.size === undefined) throw copiedElsewhere(name, digest);
        return { digest, size: plan.size, read: plan.read };
      }
    }
    const fill = this.#fills.running(digest) ?? this.#startFill(match, name, digest, ClientFeed.detached());
    const record = await fill.record;
    // Over the quota: a HEAD answers the size all the same; a Range GET is refused with the quota's message.
    if (record.location === undefined) return { digest, size: record.size, read: undefined, refused: record.refused };
    return this.#links.link(name, record);
  }

  /**
   * A blob GET of a cached repository: the stored blob, or on a miss the upstream's bytes streamed to the client
   * while they are stored (BlobFills.#copy). Undefined when `name` is not under a rule; BLOB_UNKNOWN when the
   * upstream has no such blob.
   */
  async openBlob(name: string, digest: string): Promise<{ record: Pick<BlobRecord, 'digest' | 'size'>; read: BlobRead } | undefined> {
    const match = await this.ruleOf(name);
    if (!match) return undefined;
    const { blobs } = this.#options;
    const stored = await this.#stored(name, digest);
    if (stored) return { record: stored, read: await blobs.read(stored.location) };
    const running = this.#fills.running(digest);
    if (running) {
      // Another pull is filling it: wait for its stored copy (none over the quota: then this pull streams its own).
      const record = await running.record;
      if (record.location !== undefined) {
        const linked = await this.#links.link(name, record);
        return { record: linked, read: await blobs.read(linked.location) };
      }
    }
    if (this.#options.missPolicy) {
      const plan = await this.#plan(match, name, digest);
      if (plan.kind === 'elsewhere') {
        if (plan.read === undefined) throw copiedElsewhere(name, digest);
        return { record: { digest, size: plan.size ?? 0 }, read: plan.read };
      }
      const fill = this.#fills.running(digest) ?? this.#startFill(match, name, digest, ClientFeed.detached());
      const record = await this.#links.link(name, kept(await fill.record));
      return { record, read: await blobs.read(record.location) };
    }
    const feed = new ClientFeed();
    const fill = this.#startFill(match, name, digest, feed);
    const size = await fill.size;
    if (size === undefined) {
      // No Content-Length upstream: the client's answer needs one, so it waits for the stored copy.
      const record = kept(await fill.record);
      return { record, read: await blobs.read(record.location) };
    }
    return { record: { digest, size }, read: { kind: 'stream', body: feed } };
  }

  /** Asks the miss policy, after locating the blob upstream (BLOB_UNKNOWN when the upstream has none). */
  async #plan(match: { rule: CacheRule; upstreamName: string }, name: string, digest: string): Promise<BlobMissPlan & { size?: number | undefined }> {
    const upstream = this.#options.upstreamFor(match.rule);
    const located = upstream.locateBlob ? await upstream.locateBlob(match.upstreamName, digest) : { size: undefined };
    if (!located) throw blobUnknown(name, digest);
    const plan = await this.#options.missPolicy!.plan({ rule: match.rule, name, upstreamName: match.upstreamName, digest, size: located.size, url: located.url });
    return { ...plan, size: located.size };
  }

  /** Starts copying `digest` from the rule's upstream into storage, handing the bytes to `feed` on the way. */
  #startFill(match: { rule: CacheRule; upstreamName: string }, name: string, digest: string, feed: ClientFeed) {
    return this.#fills.start(this.#options.upstreamFor(match.rule), match.upstreamName, name, digest, feed);
  }

  async #stored(name: string, digest: string): Promise<BlobRecord | undefined> {
    parseDigest(digest);
    const stored = await this.#options.metadata.getBlob(digest);
    return stored && this.#links.link(name, stored);
  }

  async #fetchManifest(
    upstream: Upstream,
    name: string,
    { rule, upstreamName }: { rule: CacheRule; upstreamName: string },
    reference: string,
    local: StoredManifest | undefined,
    manifests: CachedManifests,
  ): Promise<StoredManifest> {
    let fetched;
    try {
      fetched = await upstream.getManifest(upstreamName, reference);
    } catch (error) {
      if (local) return this.#servedStale(name, reference, local, error);
      throw upstreamUnavailable(name, reference, error);
    }
    if (!fetched) {
      if (local) return this.#servedStale(name, reference, local, new Error('the upstream no longer has this tag'));
      throw manifestUnknown(name, reference);
    }
    // By digest, the reference is the digest to match; by tag, the upstream's Docker-Content-Digest when it sent one.
    const claimed = isDigest(reference) ? reference : fetched.digest && isDigest(fetched.digest) ? fetched.digest : undefined;
    const digest = digestOf(fetched.content, claimed ? parseDigest(claimed).algorithm : undefined);
    if (claimed !== undefined && digest !== claimed) {
      throw digestInvalid('the upstream sent a manifest that does not match its digest', { name, reference, expected: claimed, actual: digest });
    }
    const parsed = parseManifest(fetched.content, fetched.mediaType);
    const stored: StoredManifest = { digest, mediaType: parsed.mediaType, content: fetched.content };
    if (parsed.subject !== undefined) stored.subject = parsed.subject;
    if (parsed.artifactType !== undefined) stored.artifactType = parsed.artifactType;
    if (parsed.annotations !== undefined) stored.annotations = parsed.annotations;
    // Blobs are not required here (unlike a push): each is fetched on its first pull.
    const tags = isDigest(reference) ? [] : [reference];
    await manifests.store(stored, tags, filledFrom(`${rule.upstream}/${upstreamName}:${reference}`));
    if (!isDigest(reference)) this.#checkedAt.set(`${name}:${reference}`, this.#now());
    return stored;
  }

  #servedStale(name: string, reference: string, local: StoredManifest, error: unknown): StoredManifest {
    this.#options.log?.({ level: 'warn', msg: 'upstream unavailable: serving the cached manifest', name, reference, digest: local.digest, cause: errorMessage(error) });
    return local;
  }
}

/**
 * What a miss answers when the upstream cannot: the Upstream's own OciError (DENIED for refused credentials,
 * TOOMANYREQUESTS, UNAVAILABLE: lib/client/upstream-registry.ts), else 503 UNAVAILABLE. Distribution's proxy answers
 * 500 UNKNOWN here; 503 with its errcode UNAVAILABLE keeps 500 for our own faults and tells clients to come back.
 */
function upstreamUnavailable(name: string, reference: string, error: unknown): OciError {
  if (isOciError(error) && error.code !== 'UNAVAILABLE') return error;
  return new OciError('UNAVAILABLE', `${isOciError(error) ? error.message : `the upstream of ${name} cannot be reached (${errorMessage(error)})`}; nothing is cached for ${name}:${reference}`, { name, reference, cause: errorMessage(error) }, { cause: error });
}

/** A fill's stored record; a fill the quota kept out of storage is refused where a stored copy is needed. */
function kept(record: BlobRecord | NotKept): BlobRecord {
  if (record.location === undefined) throw record.refused;
  return record;
}

/** A blob the miss policy copies outside this request, asked for where no redirect can answer: come back soon. */
export function copiedElsewhere(name: string, digest: string): OciError {
  return new OciError('UNAVAILABLE', `blob ${digest} of ${name} is being copied into the cache from its upstream; try again in a minute`, { name, digest });
}

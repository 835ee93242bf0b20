import { BriefCache } from './brief-cache.ts';
import { ruleFor } from './cache-rules.ts';
import { digestOf, isDigest, parseDigest } from './digest.ts';
import { blobUnknown, digestInvalid, isOciError, manifestUnknown, OciError } from './errors.ts';
import { parseManifest } from './manifest.ts';
import { isValidTag } from './names.ts';
import type { BlobStore, CacheRule, CacheRuleStore, MetadataStore, Upstream } from './ports.ts';
import type { BlobRecord, StoredManifest } from './types.ts';

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
  /** Receives a line when the upstream cannot answer and cached content is served instead. */
  log?: (entry: Record<string, unknown>) => void;
  now?: () => number;
}

/** How long the rules read from the store are used: how soon `ocireg cache add|rm` applies to a running registry. */
export const CACHE_RULES_TTL_MS = 5_000;

/**
 * The pull-through cache: repositories under a rule's prefix are filled from the upstream on a miss and then served
 * from storage like any other content (same grants, same GC: a cached blob is an ordinary blob record and link,
 * a cached manifest an ordinary manifest and tag). Pushes to them are refused: the upstream owns their content.
 *
 * Manifests by digest are immutable: fetched once, never re-checked. A tag is re-checked by HEAD at most once per
 * `revalidateAfterMs` (in this process); when the upstream cannot answer, the cached manifest is served and logged.
 * Blobs are fetched on the first pull of each, verified against their digest by the blob store, then linked.
 */
export class PullThroughCache {
  readonly #options: PullThroughCacheOptions;
  readonly #now: () => number;
  /** Every request asks whether its repository is cached: the rules are read once per few seconds, not per request. */
  readonly #rules: BriefCache<CacheRule[]>;
  /** `name:tag` → when the upstream last confirmed (or gave) the cached manifest. */
  readonly #checkedAt = new Map<string, number>();
  /** Fills in progress, by `name@digest`: concurrent misses of one blob in this process share one upstream copy. */
  readonly #fills = new Map<string, Promise<BlobRecord>>();

  constructor(options: PullThroughCacheOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#rules = new BriefCache(() => options.rules.list(), options.rulesTtlMs ?? CACHE_RULES_TTL_MS, this.#now);
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
   * Undefined when `name` is not under a rule. `cached` is what storage holds for the reference.
   */
  async getManifest(name: string, reference: string, cached: () => Promise<StoredManifest | undefined>): Promise<StoredManifest | undefined> {
    const match = await this.ruleOf(name);
    if (!match) return undefined;
    const upstream = this.#options.upstreamFor(match.rule);
    const local = await cached();
    if (isDigest(reference)) {
      if (local) return local;
      parseDigest(reference);
      return this.#fetchManifest(upstream, name, match.upstreamName, reference, local);
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
    return this.#fetchManifest(upstream, name, match.upstreamName, reference, local);
  }

  /** A blob of a cached repository: linked from storage when any repository holds it, else copied from the upstream. */
  async getBlob(name: string, digest: string): Promise<BlobRecord | undefined> {
    const match = await this.ruleOf(name);
    if (!match) return undefined;
    const { metadata } = this.#options;
    const stored = await metadata.getBlob(digest);
    if (stored) {
      await metadata.linkBlob(name, stored);
      return stored;
    }
    const key = `${name}@${digest}`;
    let fill = this.#fills.get(key);
    if (!fill) {
      fill = this.#fill(this.#options.upstreamFor(match.rule), name, match.upstreamName, digest).finally(() => this.#fills.delete(key));
      this.#fills.set(key, fill);
    }
    return fill;
  }

  /**
   * Copies one blob upstream → store, verified, then records and links it.
   *
   * Two pulls miss the same blob at once (the race "cache fill vs pull"):
   *
   *   pull A                          pull B                          storage
   *   getBlob: no record              .                               -
   *   fill: openBlob, commitWhole …   getBlob: no record              -
   *   .                               same process: awaits A's fill   -
   *   commitWhole verifies, renames   .                               bytes at <alg>/<hex>
   *   putBlob (first wins), link      .                               record + link
   *   serves the record               serves the same record          -
   *
   * In another process (or Lambda) B copies too: both write the same bytes under the same content address, the
   * store's commit is atomic (rename / S3 PUT) and `putBlob` keeps the first record, so both serve identical content.
   * Until `putBlob`, no reader can see the blob: a copy that fails verification leaves nothing visible.
   */
  async #fill(upstream: Upstream, name: string, upstreamName: string, digest: string): Promise<BlobRecord> {
    const parsed = parseDigest(digest);
    const { blobs, metadata } = this.#options;
    const opened = await upstream.openBlob(upstreamName, digest);
    if (!opened) throw blobUnknown(name, digest);
    let location: string;
    let size: number;
    if (blobs.commitWhole) {
      ({ location, size } = await blobs.commitWhole(parsed, opened.body, opened.size));
    } else {
      const state = await blobs.startUpload(`cache-${parsed.hex}-${this.#now()}`);
      const appended = await blobs.append(state, 0, opened.body, opened.size);
      location = await blobs.commit(appended.state, parsed, appended.size);
      size = appended.size;
    }
    const record = await metadata.putBlob({ digest, size, location });
    await metadata.linkBlob(name, record);
    return record;
  }

  async #fetchManifest(upstream: Upstream, name: string, upstreamName: string, reference: string, local: StoredManifest | undefined): Promise<StoredManifest> {
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
    await this.#options.metadata.putManifest(name, stored, isDigest(reference) ? [] : [reference]);
    if (!isDigest(reference)) this.#checkedAt.set(`${name}:${reference}`, this.#now());
    return stored;
  }

  #servedStale(name: string, reference: string, local: StoredManifest, error: unknown): StoredManifest {
    this.#options.log?.({ level: 'warn', msg: 'upstream unavailable: serving the cached manifest', name, reference, digest: local.digest, cause: describe(error) });
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
  return new OciError('UNAVAILABLE', `${isOciError(error) ? error.message : `the upstream of ${name} cannot be reached (${describe(error)})`}; nothing is cached for ${name}:${reference}`, { name, reference, cause: describe(error) }, { cause: error });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

import { payloadTooLarge } from '../../registry/errors.ts';
import type { ManifestBodyStore } from '../../registry/ports.ts';
import type { StoredManifest } from '../../registry/types.ts';
import { n, s, type Item } from './attribute-values.ts';
import { INLINE_MANIFEST_LIMIT } from './keys.ts';
import { PK, SK } from './table-definition.ts';

/** TransactWriteItems carries at most 4 MB: manifests are inlined into tag items only below this total. */
const TRANSACTION_BYTES_BUDGET = 3_500_000;

/**
 * The attributes a manifest item and its tag items share (keys.ts, "manifest fields"). The bytes are inline
 * (`content`) when the item and the transaction have room, else in the ManifestBodyStore by digest (the item says
 * `bodyStored`). Items written before the body store existed carry `contentKey` instead: their bodies are at the
 * same place by digest, so reading by digest serves both.
 *
 * ```
 * put     bodies.put(digest)  ──▶  TransactWrite[ manifest item, tag items… ]
 * read                             GetItem tag/manifest ──▶ no content? bodies.get(digest)
 * ```
 * The body is stored before any item names it, so a reader that finds an item finds its body; a failed put
 * leaves at most an unreferenced body (content-addressed: a retry rewrites the same bytes).
 */
export class ManifestItems {
  readonly #bodies: ManifestBodyStore | undefined;

  constructor(bodies: ManifestBodyStore | undefined) {
    this.#bodies = bodies;
  }

  /**
   * The shared attributes for `manifest` pointed at by `tagCount` tags; stores the body first when it must, after
   * `beforeStore` (garbage collection's reservation: dynamodb-manifest-bodies.ts).
   */
  async fields(manifest: StoredManifest, tagCount: number, beforeStore?: () => Promise<void>): Promise<Item> {
    const fields: Item = { digest: s(manifest.digest), mediaType: s(manifest.mediaType), size: n(manifest.content.byteLength) };
    if (manifest.subject !== undefined) fields.subject = s(manifest.subject);
    if (manifest.artifactType !== undefined) fields.artifactType = s(manifest.artifactType);
    if (manifest.annotations !== undefined) fields.annotations = s(JSON.stringify(manifest.annotations));
    const overhead = 400 + Object.values(fields).reduce((total, value) => total + (value.S?.length ?? 0), 0);
    if (overhead > INLINE_MANIFEST_LIMIT / 2) {
      throw payloadTooLarge(`manifest annotations of ${overhead} bytes exceed the ${INLINE_MANIFEST_LIMIT / 2} bytes this registry indexes`, { digest: manifest.digest });
    }
    const inlineBytes = manifest.content.byteLength + overhead;
    if (inlineBytes <= INLINE_MANIFEST_LIMIT && inlineBytes * (2 + tagCount) <= TRANSACTION_BYTES_BUDGET) {
      fields.content = { B: manifest.content };
      return fields;
    }
    if (!this.#bodies) {
      throw payloadTooLarge(`manifest of ${manifest.content.byteLength} bytes is too large for a DynamoDB item and no store is configured for large manifests`);
    }
    await beforeStore?.();
    await this.#bodies.put(manifest.digest, manifest.content, manifest.mediaType);
    fields.bodyStored = { BOOL: true };
    return fields;
  }

  /** The manifest a manifest or tag item holds, its body read from the body store when not inline. */
  async manifestOf(item: Item): Promise<StoredManifest> {
    const digest = item.digest!.S!;
    let content = item.content?.B;
    if (content === undefined) {
      content = await this.#bodies?.get(digest);
      if (content === undefined) {
        throw new Error(`manifest item ${item[PK]?.S} ${item[SK]?.S} has no inline content and ${this.#bodies ? 'the body store has no body' : 'no body store is configured'} for ${digest}`);
      }
    }
    const manifest: StoredManifest = { digest, mediaType: item.mediaType!.S!, content };
    if (item.subject?.S !== undefined) manifest.subject = item.subject.S;
    if (item.artifactType?.S !== undefined) manifest.artifactType = item.artifactType.S;
    if (item.annotations?.S !== undefined) manifest.annotations = JSON.parse(item.annotations.S) as Record<string, string>;
    // The last pull recorded through this item (dynamodb-pulls.ts): the pull path's day check.
    if (item.pulledAt?.N !== undefined) manifest.pulledAt = Number(item.pulledAt.N);
    return manifest;
  }
}

import type { GcEntry, GcScanSource, ScanPage } from '../../registry/gc/gc-entries.ts';
import { s, type Item } from './attribute-values.ts';
import type { DynamoDbTable } from './dynamodb-table.ts';
import { GC_ATTRIBUTES } from './gc-attributes.ts';
import { BLOB_RECORD_SK, MANIFEST_PREFIX, repositoryPartition, TAG_PREFIX, UPLOAD_SK } from './keys.ts';
import type { ManifestItems } from './manifest-item.ts';
import { PK, SK } from './table-definition.ts';

const REPOSITORY = 'REPO#';
const BLOB = 'BLOB#';
const UPLOAD = 'UPLOAD#';

/**
 * Where a scan stands: in the table (after `start`; in segment `segment` of `of` for a parallel scan), then in the
 * objects (after `cursor`). Of a parallel scan's chains, segment 0 goes on into the objects, the others end.
 */
type Position = { phase: 'table'; start?: Item; segment?: number; of?: number } | { phase: 'objects'; cursor?: string };

/**
 * The garbage-collection scan of the metadata table (GcStore.scan): one strongly consistent Scan page per call,
 * turned into entries (blob records, links, manifests with their bodies, upload sessions; identities, tags, history
 * and the rest are not garbage-collection entries), then the pages of `objects` (the bucket: stray blob bytes and
 * manifest bodies, lib/storage/s3/s3-object-scan.ts). The cursor carries the position across calls, so a scheduled
 * run could page through a table of any size; it is opaque to the collector.
 *
 * `scanStarts` splits the table into the segments of a parallel Scan (DynamoDB reads them side by side; each item
 * is in exactly one segment), so a large table is scanned in a fraction of the time.
 *
 * A manifest entry's `tagged` asks one Query of the repository's tags (projected to their digests) per repository
 * on the page: tag items sort after manifest items in a partition, so a page cannot see them itself.
 */
export class DynamoDbGcScan {
  readonly #table: DynamoDbTable;
  readonly #items: ManifestItems;
  readonly #objects: GcScanSource | undefined;

  constructor(table: DynamoDbTable, items: ManifestItems, objects: GcScanSource | undefined) {
    this.#table = table;
    this.#items = items;
    this.#objects = objects;
  }

  async scan(cursor: string | undefined, limit: number): Promise<ScanPage<GcEntry>> {
    const at = decode(cursor);
    if (at.phase === 'objects') {
      const page = await this.#objects!.scan(at.cursor, limit);
      return { items: page.items, cursor: page.cursor === undefined ? undefined : encode({ phase: 'objects', cursor: page.cursor }) };
    }
    const part = at.of !== undefined ? { segment: at.segment ?? 0, total: at.of } : undefined;
    const page = await this.#table.scanPage(at.start, limit, part);
    const tagged = new Map<string, Promise<Set<string>>>();
    const entries = await Promise.all(page.items.map((item) => this.#entry(item, tagged)));
    const next: Position | undefined = page.next
      ? { ...at, start: page.next }
      : this.#objects && (at.segment ?? 0) === 0
        ? { phase: 'objects' }
        : undefined;
    return { items: entries.filter((entry) => entry !== undefined), cursor: next && encode(next) };
  }

  scanStarts(segments: number): string[] {
    const total = Math.max(1, Math.floor(segments));
    return Array.from({ length: total }, (_, segment) => encode({ phase: 'table', segment, of: total }));
  }

  async #entry(item: Item, tagged: Map<string, Promise<Set<string>>>): Promise<GcEntry | undefined> {
    const pk = item[PK]!.S!;
    const sk = item[SK]!.S!;
    const createdAt = Number(item[GC_ATTRIBUTES.createdAt]?.N ?? 0);
    if (pk.startsWith(BLOB) && sk === BLOB_RECORD_SK) {
      return { kind: 'blob', digest: pk.slice(BLOB.length), size: Number(item.size!.N), location: item.location!.S!, createdAt };
    }
    if (pk.startsWith(UPLOAD) && sk === UPLOAD_SK) {
      return { kind: 'upload', name: item.name!.S!, uploadId: pk.slice(UPLOAD.length), createdAt: Number(item.createdAt!.N), storage: JSON.parse(item.storage!.S!) };
    }
    if (!pk.startsWith(REPOSITORY)) return undefined;
    const name = pk.slice(REPOSITORY.length);
    if (sk.startsWith(BLOB)) return { kind: 'link', name, digest: sk.slice(BLOB.length), size: Number(item.size!.N), createdAt };
    if (!sk.startsWith(MANIFEST_PREFIX)) return undefined;
    if (!tagged.has(name)) tagged.set(name, this.#taggedDigests(name));
    const manifest = await this.#items.manifestOf(item);
    return { kind: 'manifest', name, manifest, tagged: (await tagged.get(name)!).has(manifest.digest), storedAt: createdAt };
  }

  async #taggedDigests(name: string): Promise<Set<string>> {
    const { items } = await this.#table.query({
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ProjectionExpression: '#digest',
      ExpressionAttributeNames: { '#pk': PK, '#sk': SK, '#digest': 'digest' },
      ExpressionAttributeValues: { ':pk': s(repositoryPartition(name)), ':prefix': s(TAG_PREFIX) },
    });
    return new Set(items.flatMap((item) => (item.digest?.S !== undefined ? [item.digest.S] : [])));
  }
}

function encode(position: Position): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

function decode(cursor: string | undefined): Position {
  if (cursor === undefined) return { phase: 'table' };
  return JSON.parse(Buffer.from(cursor, 'base64url').toString()) as Position;
}

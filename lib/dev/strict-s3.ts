import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { s3Checksum } from './s3-checksums.ts';
import {
  checkCompletedPartChecksum,
  checkCompleteHeaders,
  checkCreateMultipart,
  checkPartChecksum,
  checkRequestBody,
  parseCompletedParts,
  type ChecksumType,
  type MultipartChecksum,
  type S3ChecksumValue,
} from './strict-s3-checksums.ts';

/**
 * Real S3's rules that s3rver does not enforce, so tests against s3rver fail where production would.
 *
 * - {@link S3CallCounter}: an SDK middleware counting the HTTP requests a client sends, per operation; it also
 *   refuses part numbers outside 1..10,000 before they leave the client.
 * - {@link strictS3rver}: Koa middleware put in front of s3rver. Part sizes are checked there, server side,
 *   because only the server sees every part whichever client (or Lambda) uploaded it:
 *   - UploadPart: part number 1..10,000 (`InvalidArgument`), the multipart upload must exist (`NoSuchUpload`);
 *   - CompleteMultipartUpload: ascending part numbers (`InvalidPartOrder`), every listed part uploaded with the
 *     listed ETag (`InvalidPart`), every part but the last ≥ 5 MiB (`EntityTooSmall`);
 *   - AbortMultipartUpload, which s3rver lacks (405): deletes the parts, `NoSuchUpload` when unknown;
 *   - presigned URLs (SigV4 query auth), whose signatures s3rver never checks: `SignatureDoesNotMatch`, and
 *     `AccessDenied` once expired.
 *   - DeleteObject never removes a "directory" a concurrent PutObject is writing into (s3rver's filesystem store
 *     does, and that put then hangs);
 *   - integrity (lib/dev/strict-s3-checksums.ts): `aws-chunked` bodies decoded and their trailing checksum
 *     verified, SigV4 payload hashes, Content-MD5 and `x-amz-checksum-*` verified (`BadDigest`,
 *     `XAmzContentSHA256Mismatch`), a multipart upload's checksum algorithm kept consistent from
 *     CreateMultipartUpload through UploadPart to CompleteMultipartUpload (`InvalidRequest`, `InvalidPart`);
 *     each object keeps the checksum S3 would store (the one sent, else CRC64NVME; none for a multipart object
 *     created without an algorithm) and returns it to GET/HEAD
 *     with `x-amz-checksum-mode: ENABLED`, so the SDK's response validation runs as on AWS.
 * - {@link verifyPresignedUrl}: the same SigV4 check as a function, to assert on a URL without fetching it.
 */

export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_NUMBER = 10_000;

// ---- SDK side: call counter ----------------------------------------------------------------------------------

/** Any AWS SDK v3 client: S3Client, DynamoDBClient… */
interface SdkClient {
  middlewareStack: S3Client['middlewareStack'];
}

/**
 * Counts the requests AWS SDK clients actually send, per operation (presigning sends nothing and is not
 * counted; each retry is). Made for S3; attached to a DynamoDBClient it counts DynamoDB requests the same way.
 */
export class S3CallCounter {
  readonly #counts = new Map<string, number>();
  readonly #attached = new WeakSet<object>();

  /** Adds the counter (and, for S3, the client-side part number check) to `client`; returns it. */
  attach<Client extends object>(client: Client): Client {
    const { middlewareStack } = client as unknown as SdkClient;
    if (this.#attached.has(client)) return client;
    this.#attached.add(client);
    middlewareStack.add(
      (next, context) => async (args) => {
        const operation = operationOf(context.commandName);
        const partNumber = (args.input as { PartNumber?: unknown }).PartNumber;
        if ((operation === 'UploadPart' || operation === 'UploadPartCopy') && !(Number.isInteger(partNumber) && (partNumber as number) >= 1 && (partNumber as number) <= MAX_PART_NUMBER)) {
          throw s3Exception('InvalidArgument', `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`, 400);
        }
        return next(args);
      },
      { step: 'initialize', name: 'ocireg-strict-part-number' },
    );
    middlewareStack.add(
      (next, context) => async (args) => {
        const operation = operationOf(context.commandName);
        this.#counts.set(operation, (this.#counts.get(operation) ?? 0) + 1);
        return next(args);
      },
      // The deserialize step runs once per HTTP attempt, and never for getSignedUrl (it stops at signing).
      { step: 'deserialize', name: 'ocireg-s3-call-counter' },
    );
    return client;
  }

  /** Requests sent for one operation (`'UploadPart'`, `'PutObject'`…) since the last reset. */
  count(operation: string): number {
    return this.#counts.get(operation) ?? 0;
  }

  /** All requests sent since the last reset. */
  total(): number {
    let total = 0;
    for (const count of this.#counts.values()) total += count;
    return total;
  }

  /** Counts by operation, sorted by name, zeros left out. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#counts].filter(([, count]) => count > 0).sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  reset(): void {
    this.#counts.clear();
  }
}

function operationOf(commandName: string | undefined): string {
  return (commandName ?? 'Unknown').replace(/Command$/, '');
}

function s3Exception(name: string, message: string, status: number): S3ServiceException {
  return new S3ServiceException({ name, message, $fault: 'client', $metadata: { httpStatusCode: status } });
}

// ---- presigned URLs ------------------------------------------------------------------------------------------

export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export type PresignCheck = { valid: true } | { valid: false; reason: string };

/**
 * Verifies a SigV4 presigned URL as S3 does: recomputes the signature from the URL (method, path, every query
 * parameter but the signature, the signed headers) and checks the expiry.
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
 */
export function verifyPresignedUrl(
  url: string,
  credentials: SigningCredentials,
  options: { method?: string; headers?: Record<string, string | undefined>; now?: number } = {},
): PresignCheck {
  const parsed = new URL(url);
  const query = parsed.searchParams;
  const algorithm = query.get('X-Amz-Algorithm');
  const credential = query.get('X-Amz-Credential');
  const amzDate = query.get('X-Amz-Date');
  const expires = Number(query.get('X-Amz-Expires'));
  const signedHeaders = query.get('X-Amz-SignedHeaders');
  const signature = query.get('X-Amz-Signature');
  if (algorithm !== 'AWS4-HMAC-SHA256' || !credential || !amzDate || !signedHeaders || !signature || !Number.isInteger(expires)) {
    return { valid: false, reason: 'not a SigV4 presigned URL' };
  }
  const [accessKeyId, date, region, service, terminator] = credential.split('/');
  if (accessKeyId !== credentials.accessKeyId) return { valid: false, reason: `unknown access key ${accessKeyId}` };
  if (!date || !region || !service || terminator !== 'aws4_request' || !amzDate.startsWith(date)) return { valid: false, reason: 'malformed credential scope' };
  const signedAt = Date.parse(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  if (Number.isNaN(signedAt)) return { valid: false, reason: 'malformed X-Amz-Date' };
  if (expires < 1 || expires > 604_800) return { valid: false, reason: 'X-Amz-Expires must be between 1 and 604800 seconds' };

  const canonicalUri = parsed.pathname
    .split('/')
    .map((segment) => rfc3986(decodeURIComponent(segment)))
    .join('/');
  const canonicalQuery = [...query]
    .filter(([key]) => key !== 'X-Amz-Signature')
    .map(([key, value]) => [rfc3986(key), rfc3986(value)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
  const headerNames = signedHeaders.split(';');
  const headerLines: string[] = [];
  for (const name of headerNames) {
    const value = name === 'host' ? (options.headers?.host ?? parsed.host) : options.headers?.[name];
    if (value === undefined) return { valid: false, reason: `signed header ${name} is missing` };
    headerLines.push(`${name}:${value.trim().replace(/\s+/g, ' ')}\n`);
  }
  const payloadHash = query.get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD';
  const canonicalRequest = [options.method ?? 'GET', canonicalUri, canonicalQuery, headerLines.join(''), signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  let key: Buffer = hmac(`AWS4${credentials.secretAccessKey}`, date);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const expected = Buffer.from(createHmac('sha256', key).update(stringToSign).digest('hex'));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { valid: false, reason: 'signature does not match' };
  if ((options.now ?? Date.now()) > signedAt + expires * 1000) return { valid: false, reason: 'expired' };
  return { valid: true };
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

// ---- server side: s3rver -------------------------------------------------------------------------------------

/** The parts of a Koa context this middleware uses. */
interface KoaContext {
  method: string;
  path: string;
  url: string;
  host: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  req: NodeJS.ReadableStream & { headers: unknown };
  status: number;
  body: unknown;
  type: string;
  set(name: string, value: string): void;
}

/** The parts of an s3rver instance this module touches (s3rver ships no types). */
export interface S3rverLike {
  middleware: ((ctx: KoaContext, next: () => Promise<void>) => Promise<void>)[];
  store: {
    getResourcePath(bucket: string, key: string | undefined, resource: string): string;
    deleteObject(bucket: string, key: string): Promise<void>;
  };
}

/** Sidecar of an object: the checksum S3 stored with it (returned by GET/HEAD with `x-amz-checksum-mode: ENABLED`). */
const OBJECT_CHECKSUM = 'checksum.json';

interface StoredChecksum extends S3ChecksumValue {
  type: ChecksumType;
}

/** Puts S3's multipart, integrity and presigned-URL rules in front of s3rver's own routes. Call before `run()`. */
export function strictS3rver(s3rver: S3rverLike, credentials: SigningCredentials): void {
  // s3rver removes a key's directory once it looks empty, under the feet of a concurrent PutObject of a sibling
  // key (ENOENT, and the put never answers). S3 has no directories: delete the object's files only.
  const { store } = s3rver;
  store.deleteObject = async (bucket, key) => {
    await Promise.all(
      ['object', 'object.md5', 'metadata.json', OBJECT_CHECKSUM].map((resource) =>
        rm(store.getResourcePath(bucket, key, resource), { force: true }),
      ),
    );
  };
  s3rver.middleware.unshift(async (ctx, next) => {
    const [, bucket = '', ...keyParts] = ctx.path.split('/');
    const key = keyParts.map((part) => decodeURIComponent(part)).join('/');
    const uploadId = typeof ctx.query.uploadId === 'string' ? ctx.query.uploadId : undefined;
    const uploadDir = uploadId !== undefined && key !== '' ? join(s3rver.store.getResourcePath(bucket, undefined, 'uploads'), uploadId) : undefined;

    if ('X-Amz-Algorithm' in ctx.query) {
      const headers = Object.fromEntries(Object.entries(ctx.headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(',') : value]));
      const check = verifyPresignedUrl(`http://${ctx.host}${ctx.url}`, credentials, { method: ctx.method, headers });
      if (!check.valid) {
        return fail(ctx, 403, check.reason === 'expired' ? 'AccessDenied' : 'SignatureDoesNotMatch', check.reason === 'expired' ? 'Request has expired' : `The request signature we calculated does not match the signature you provided (${check.reason})`);
      }
    }

    // Every body is checked as S3 checks it (aws-chunked decoded, payload hash and checksums verified) and s3rver
    // gets the bytes S3 would store.
    let checksum: S3ChecksumValue | undefined;
    let body: Buffer | undefined;
    if (ctx.method === 'PUT' || ctx.method === 'POST') {
      const checked = checkRequestBody(ctx.headers, await readAll(ctx.req), { checksumHeadersNameObject: ctx.method === 'POST' && uploadId !== undefined });
      if ('code' in checked) return fail(ctx, checked.status, checked.code, checked.message);
      ({ body, checksum } = checked);
      replaceBody(ctx, body);
    }

    if (ctx.method === 'POST' && 'uploads' in ctx.query) {
      const declared = checkCreateMultipart(ctx.headers);
      if ('code' in declared) return fail(ctx, declared.status, declared.code, declared.message);
      return next();
    }

    if (ctx.method === 'PUT' && key !== '' && !('partNumber' in ctx.query) && !('tagging' in ctx.query) && !('acl' in ctx.query)) {
      await next();
      if (ctx.status !== 200) return;
      if (typeof ctx.headers['x-amz-copy-source'] === 'string') {
        await copyObjectChecksum(s3rver, bucket, key, ctx.headers['x-amz-copy-source']);
        return;
      }
      await untilWritten(store.getResourcePath(bucket, key, 'object'), body!.length);
      await recordObjectChecksum(s3rver, bucket, key, checksum ?? { algorithm: 'crc64nvme', value: s3Checksum('crc64nvme', body!) });
      return;
    }

    if ((ctx.method === 'GET' || ctx.method === 'HEAD') && key !== '' && uploadDir === undefined) {
      await next();
      if (ctx.status === 200 && checksumModeEnabled(ctx) && ctx.headers.range === undefined) {
        const stored = await readJson<StoredChecksum>(store.getResourcePath(bucket, key, OBJECT_CHECKSUM));
        if (stored) {
          ctx.set(`x-amz-checksum-${stored.algorithm}`, stored.value);
          ctx.set('x-amz-checksum-type', stored.type);
        }
      }
      return;
    }

    if (uploadDir === undefined) return next();
    const exists = await stat(join(uploadDir, 'key')).then(() => true, () => false);

    if (ctx.method === 'PUT' && 'partNumber' in ctx.query) {
      const partNumber = Number(ctx.query.partNumber);
      if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PART_NUMBER) {
        return fail(ctx, 400, 'InvalidArgument', `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`);
      }
      if (!exists) return noSuchUpload(ctx);
      const part = checkPartChecksum(await multipartChecksumOf(uploadDir), checksum, body!);
      if ('code' in part) return fail(ctx, part.status, part.code, part.message);
      const sidecar = join(uploadDir, `${partNumber}.checksum.json`);
      // A part uploaded again replaces the earlier one, its checksum too.
      await rm(sidecar, { force: true });
      await next();
      if (ctx.status === 200) await untilWritten(join(uploadDir, String(partNumber)), body!.length);
      if (ctx.status === 200 && part.recorded) {
        await writeFile(sidecar, JSON.stringify(part.recorded));
        ctx.set(`x-amz-checksum-${part.recorded.algorithm}`, part.recorded.value);
      }
      return;
    }

    if (ctx.method === 'DELETE') {
      if (!exists) return noSuchUpload(ctx);
      await rm(uploadDir, { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = null;
      return;
    }

    if (ctx.method === 'POST') {
      if (!exists) return noSuchUpload(ctx);
      const upload = await multipartChecksumOf(uploadDir);
      const parts = parseCompletedParts(body!.toString('utf8'));
      const partPaths: string[] = [];
      let objectSize = 0;
      for (const [index, part] of parts.entries()) {
        if (index > 0 && part.number <= parts[index - 1]!.number) return fail(ctx, 400, 'InvalidPartOrder', 'The list of parts was not in ascending order.');
        const partPath = join(uploadDir, String(part.number));
        const [size, md5] = await Promise.all([stat(partPath).then((s) => s.size, () => undefined), readFile(`${partPath}.md5`, 'utf8').catch(() => undefined)]);
        if (size === undefined || md5 !== part.etag) {
          return fail(ctx, 400, 'InvalidPart', `One or more of the specified parts could not be found or its entity tag did not match (part ${part.number}).`);
        }
        if (index < parts.length - 1 && size < MIN_PART_SIZE) {
          return fail(ctx, 400, 'EntityTooSmall', `Your proposed upload is smaller than the minimum allowed size (part ${part.number} has ${size} bytes, minimum ${MIN_PART_SIZE}).`);
        }
        const mismatch = checkCompletedPartChecksum(upload, part, await readJson<S3ChecksumValue>(`${partPath}.checksum.json`));
        if (mismatch) return fail(ctx, mismatch.status, mismatch.code, mismatch.message);
        partPaths.push(partPath);
        objectSize += size;
      }
      const object = () => Buffer.concat(partPaths.map((path) => readFileSync(path)));
      const whole = checkCompleteHeaders(upload, ctx.headers, object);
      if (whole) return fail(ctx, whole.status, whole.code, whole.message);
      // Before next(): s3rver deletes the parts once it assembled the object.
      const fullObject = upload.algorithm !== undefined && upload.type === 'FULL_OBJECT' ? { algorithm: upload.algorithm, value: s3Checksum(upload.algorithm, object()) } : undefined;
      await next();
      if (ctx.status !== 200) return;
      await untilWritten(store.getResourcePath(bucket, key, 'object'), objectSize);
      // A FULL_OBJECT upload keeps its whole-object checksum. A COMPOSITE one keeps a checksum of part checksums
      // (the SDK does not validate those), and one created without an algorithm gets CRC64NVME in the Complete
      // response only (versity/versitygw#1547, which mimics S3; not documented): nothing for GET to return.
      if (fullObject) {
        await recordObjectChecksum(s3rver, bucket, key, fullObject);
      } else {
        await rm(store.getResourcePath(bucket, key, OBJECT_CHECKSUM), { force: true });
      }
      return;
    }
    return next();
  });
}

/** What CreateMultipartUpload declared: s3rver keeps the request's headers in the upload's `metadata` file. */
async function multipartChecksumOf(uploadDir: string): Promise<MultipartChecksum> {
  const headers = (await readJson<Record<string, string>>(join(uploadDir, 'metadata'))) ?? {};
  const declared = checkCreateMultipart(headers);
  return 'code' in declared ? {} : declared;
}

/**
 * Keeps the checksum S3 stores with a new object: the one the request carried (verified), else S3's default
 * full-object CRC64NVME of the bytes received.
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/API_Checksum.html
 */
async function recordObjectChecksum(s3rver: S3rverLike, bucket: string, key: string, checksum: S3ChecksumValue): Promise<void> {
  const stored: StoredChecksum = { ...checksum, type: 'FULL_OBJECT' };
  await writeFile(s3rver.store.getResourcePath(bucket, key, OBJECT_CHECKSUM), JSON.stringify(stored));
}

/** A copy keeps its source's checksum. */
async function copyObjectChecksum(s3rver: S3rverLike, bucket: string, key: string, copySource: string): Promise<void> {
  const target = s3rver.store.getResourcePath(bucket, key, OBJECT_CHECKSUM);
  const [sourceBucket = '', ...sourceKey] = decodeURIComponent(copySource.replace(/^\//, '').split('?')[0]!).split('/');
  const source = await readJson<StoredChecksum>(s3rver.store.getResourcePath(sourceBucket, sourceKey.join('/'), OBJECT_CHECKSUM));
  if (source) await writeFile(target, JSON.stringify(source));
  else await rm(target, { force: true });
}

/**
 * Waits until s3rver's file holds all `size` bytes. s3rver answers a PUT when its hashing stream has seen the
 * body, before the file stream it pipes into has flushed, so a GET right after could read a short file; S3
 * answers once the object is stored (read-after-write consistency).
 */
async function untilWritten(path: string, size: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const current = await stat(path).then((s) => s.size, () => -1);
    if (current === size) return;
    if (Date.now() > deadline) throw new Error(`s3rver wrote ${current} of ${size} bytes to ${path} within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function checksumModeEnabled(ctx: KoaContext): boolean {
  const mode = ctx.headers['x-amz-checksum-mode'] ?? ctx.query['x-amz-checksum-mode'];
  return typeof mode === 'string' && mode.toUpperCase() === 'ENABLED';
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/**
 * Hands s3rver the decoded bytes: a fresh stream, and the request headers (one object shared by `ctx.headers`
 * and the request s3rver reads) rewritten as S3 sees them after decoding.
 */
function replaceBody(ctx: KoaContext, body: Buffer): void {
  const headers = ctx.headers;
  const encodings = String(headers['content-encoding'] ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '' && part.toLowerCase() !== 'aws-chunked');
  if (encodings.length > 0) headers['content-encoding'] = encodings.join(',');
  else delete headers['content-encoding'];
  delete headers['transfer-encoding'];
  delete headers['x-amz-decoded-content-length'];
  headers['content-length'] = String(body.length);
  const replay = Readable.from([body]) as Readable & { headers: unknown };
  replay.headers = ctx.req.headers;
  ctx.req = replay;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function noSuchUpload(ctx: KoaContext): void {
  fail(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.');
}

function fail(ctx: KoaContext, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message></Error>`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

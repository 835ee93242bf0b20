import { readFileSync } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyPresignedUrl, type SigningCredentials } from './presigned-url.ts';
import { s3Checksum } from './s3-checksums.ts';
import { MAX_PART_NUMBER, MIN_PART_SIZE } from './s3-limits.ts';
import { checksumModeEnabled, fail, noSuchUpload, readAll, readJson, replaceBody, type S3rverLike } from './s3rver-context.ts';
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
 * - S3CallCounter (sdk-call-counter.ts): an SDK middleware counting the HTTP requests a client sends, per operation; it also
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
 * - verifyPresignedUrl (presigned-url.ts): the same SigV4 check as a function, to assert on a URL without fetching it.
 * - listObjectsV2Pages (s3rver-list-v2.ts): ListObjectsV2 continuation tokens that work on Node 22 (s3rver's need DES).
 */

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


import { fail, type KoaContext, type S3rverLike } from './s3rver-context.ts';

/**
 * ListObjectsV2 pages for s3rver. s3rver encrypts its continuation tokens with DES, which the OpenSSL of Node 22
 * refuses: every listing with a second page (more keys than MaxKeys) fails with InternalError, so nothing that pages
 * through a bucket (garbage collection's object scan: lib/storage/s3/s3-object-scan.ts) could be tested past one
 * page. This middleware serves `list-type=2` through s3rver's version-1 listing (`marker`, no token) and answers in
 * version 2's terms: `ContinuationToken`, `NextContinuationToken` (opaque to clients, as on S3: here the last key,
 * base64url), `KeyCount`, `StartAfter`, and `Owner` only with `fetch-owner=true`.
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html
 */
export function listObjectsV2Pages(s3rver: S3rverLike): void {
  // Inside s3rver's XML renderer (the last middleware is its router): the listing is still an object here.
  s3rver.middleware.splice(s3rver.middleware.length - 1, 0, async (ctx, next) => {
    const [, bucket = '', ...key] = ctx.path.split('/');
    if (ctx.method !== 'GET' || bucket === '' || key.join('/') !== '' || ctx.query['list-type'] !== '2') return next();
    const { 'list-type': _v2, 'continuation-token': token, 'start-after': startAfter, 'fetch-owner': fetchOwner, ...rest } = ctx.query;
    let after = typeof startAfter === 'string' ? startAfter : undefined;
    if (typeof token === 'string') {
      after = keyOfToken(token);
      if (after === undefined) return fail(ctx, 400, 'InvalidArgument', 'The continuation token provided is incorrect');
    }
    setQuery(ctx, after === undefined ? rest : { ...rest, marker: after });
    await next();
    const result = (ctx.body as { ListBucketResult?: Record<string, unknown> } | undefined)?.ListBucketResult;
    if (result === undefined) return;
    const contents = ((result.Contents as Array<Record<string, unknown>> | undefined) ?? []).map(({ Owner, ...object }) => (fetchOwner === 'true' ? { ...object, Owner } : object));
    delete result.Marker;
    delete result.NextMarker;
    Object.assign(result, {
      Contents: contents,
      StartAfter: typeof token === 'string' ? undefined : after,
      ContinuationToken: typeof token === 'string' ? token : undefined,
      NextContinuationToken: result.IsTruncated === true && contents.length > 0 ? tokenOf(String(contents.at(-1)!.Key)) : undefined,
      KeyCount: contents.length,
    });
  });
}

function tokenOf(key: string): string {
  return Buffer.from(`after:${key}`).toString('base64url');
}

function keyOfToken(token: string): string | undefined {
  const text = Buffer.from(token, 'base64url').toString();
  return text.startsWith('after:') ? text.slice('after:'.length) : undefined;
}

/** Koa parses `ctx.query` from the query string; setting it writes the query string back. */
function setQuery(ctx: KoaContext, query: Record<string, string | string[] | undefined>): void {
  ctx.query = query;
}

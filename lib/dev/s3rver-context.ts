import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';

/**
 * What strict-s3.ts needs of s3rver and its Koa context (s3rver ships no types), and how it answers in their
 * terms: S3's XML errors, a request body replaced by the bytes S3 would store.
 */

/** The parts of a Koa context the strict layer uses. */
export interface KoaContext {
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

export function checksumModeEnabled(ctx: KoaContext): boolean {
  const mode = ctx.headers['x-amz-checksum-mode'] ?? ctx.query['x-amz-checksum-mode'];
  return typeof mode === 'string' && mode.toUpperCase() === 'ENABLED';
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/**
 * Hands s3rver the decoded bytes: a fresh stream, and the request headers (one object shared by `ctx.headers`
 * and the request s3rver reads) rewritten as S3 sees them after decoding.
 */
export function replaceBody(ctx: KoaContext, body: Buffer): void {
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

export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export function noSuchUpload(ctx: KoaContext): void {
  fail(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.');
}

export function fail(ctx: KoaContext, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message></Error>`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

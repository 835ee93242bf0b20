import { OciError, retryAfterSecondsOf, UploadRangeError, type OciErrorCode } from '../registry/errors.ts';
import { uploadPositionHeaders } from './ranges.ts';
import type { HttpResponse } from './types.ts';

/**
 * The one table from OCI error code to HTTP status. Typed as a Record so the compiler checks it covers every code.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#error-codes
 */
export const STATUS_OF: Record<OciErrorCode, number> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  RANGE_INVALID: 416,
  PAYLOAD_TOO_LARGE: 413,
  PAGINATION_NUMBER_INVALID: 400,
  TAG_CONFLICT: 409,
  UNAVAILABLE: 503,
  UNKNOWN: 500,
};

export interface OciErrorResponseOptions {
  /** Overrides the table's status, for answers that are not the registry's own (a proxy's 502, an unknown path's 404). */
  status?: number;
  headers?: Record<string, string>;
}

/**
 * The only writer of `{"errors":[{code,message,detail}]}`: every error body of the registry, the token endpoint,
 * the adapters and the push proxy comes from here.
 */
export function renderOciError(code: OciErrorCode, message: string, detail?: unknown, options: OciErrorResponseOptions = {}): HttpResponse & { body: Uint8Array } {
  const body = new TextEncoder().encode(JSON.stringify({ errors: [{ code, message, detail: detail ?? null }] }));
  return {
    status: options.status ?? STATUS_OF[code],
    headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.byteLength), ...options.headers },
    body,
  };
}

export interface RenderedError {
  response: HttpResponse;
  /** The error as logged: the OCI code and message, and for a 500 the original cause. */
  code: OciErrorCode;
  message: string;
  cause?: unknown;
}

/**
 * Renders any thrown value. Only OciErrors speak for themselves; anything else is a 500 with a generic message,
 * its cause logged by the adapter, never sent. Headers the error implies (Retry-After, an upload's Range) are set here.
 */
export function renderError(error: unknown, extraHeaders: Record<string, string> = {}, method = 'GET'): RenderedError {
  const oci = error instanceof OciError ? error : new OciError('UNKNOWN', 'internal server error');
  const response: HttpResponse = renderOciError(oci.code, oci.message, oci.detail, { headers: { ...headersOf(oci), ...extraHeaders } });
  if (method === 'HEAD') delete response.body;
  const rendered: RenderedError = { response, code: oci.code, message: oci.message };
  if (!(error instanceof OciError)) rendered.cause = error;
  return rendered;
}

function headersOf(error: OciError): Record<string, string> {
  // A rejected chunk tells the client where the upload stands, so it can resume (spec: "Pushing a blob in chunks").
  if (error instanceof UploadRangeError) return uploadPositionHeaders(error.position);
  const retryAfter = retryAfterSecondsOf(error);
  return retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) };
}

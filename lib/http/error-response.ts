import { OciError, retryAfterSecondsOf, type OciErrorCode } from '../registry/errors.ts';
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
  UNKNOWN: 500,
};

export interface RenderedError {
  response: HttpResponse;
  /** The error as logged: the OCI code and message, and for a 500 the original cause. */
  code: OciErrorCode;
  message: string;
  cause?: unknown;
}

/**
 * Renders any thrown value as `{"errors":[{code,message,detail}]}`. Only OciErrors speak for themselves;
 * anything else is a 500 with a generic message, its cause logged by the adapter, never sent. A 429 carries
 * `Retry-After` from the error's `retryAfterSeconds`.
 */
export function renderError(error: unknown, extraHeaders: Record<string, string> = {}, method = 'GET'): RenderedError {
  const oci = error instanceof OciError ? error : new OciError('UNKNOWN', 'internal server error');
  const status = STATUS_OF[oci.code];
  const body = JSON.stringify({ errors: [{ code: oci.code, message: oci.message, detail: oci.detail ?? null }] });
  const bytes = new TextEncoder().encode(body);
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(bytes.byteLength),
    ...extraHeaders,
  };
  const retryAfter = retryAfterSecondsOf(oci);
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  const response: HttpResponse = method === 'HEAD' ? { status, headers } : { status, headers, body: bytes };
  const rendered: RenderedError = { response, code: oci.code, message: oci.message };
  if (!(error instanceof OciError)) rendered.cause = error;
  return rendered;
}

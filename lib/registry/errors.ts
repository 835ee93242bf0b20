/**
 * Registry errors, by the codes of the OCI Distribution Spec.
 *
 * The core throws only {@link OciError}; `lib/http` owns the one code → status table and the renderer.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#error-codes
 */

/** The spec's error codes, plus those distribution/distribution adds for ranges, sizes, pagination and internal failures. */
export type OciErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'RANGE_INVALID'
  | 'PAYLOAD_TOO_LARGE'
  | 'PAGINATION_NUMBER_INVALID'
  | 'TAG_CONFLICT'
  /** Distribution's errcode for a service that cannot answer now (503): a pull-through cache's upstream is down. */
  | 'UNAVAILABLE'
  | 'UNKNOWN';

export class OciError extends Error {
  readonly code: OciErrorCode;
  readonly detail: unknown;

  constructor(code: OciErrorCode, message: string, detail?: unknown, options?: ErrorOptions) {
    super(message, options);
    this.name = 'OciError';
    this.code = code;
    this.detail = detail;
  }
}

export function isOciError(error: unknown, code?: OciErrorCode): error is OciError {
  return error instanceof OciError && (code === undefined || error.code === code);
}

/** What went wrong, as one line for a log or an error's detail: `throw` may carry anything, not only an Error. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Anything thrown, as an Error, for a logger that records its name, message and stack. */
export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

export const blobUnknown = (name: string, digest: string) =>
  new OciError('BLOB_UNKNOWN', 'blob unknown to registry', { name, digest });

export const blobUploadUnknown = (name: string, uploadId: string) =>
  new OciError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { name, uploadId });

export const blobUploadInvalid = (reason: string, detail?: unknown) =>
  new OciError('BLOB_UPLOAD_INVALID', `blob upload invalid: ${reason}`, detail);

export const digestInvalid = (reason: string, detail?: unknown) =>
  new OciError('DIGEST_INVALID', `provided digest did not match uploaded content: ${reason}`, detail);

export const manifestBlobUnknown = (digest: string) =>
  new OciError('MANIFEST_BLOB_UNKNOWN', 'manifest references a manifest or blob unknown to registry', { digest });

export const manifestInvalid = (reason: string, detail?: unknown) =>
  new OciError('MANIFEST_INVALID', `manifest invalid: ${reason}`, detail);

export const manifestUnknown = (name: string, reference: string) =>
  new OciError('MANIFEST_UNKNOWN', 'manifest unknown to registry', { name, reference });

export const nameInvalid = (name: string) =>
  new OciError('NAME_INVALID', 'invalid repository name', { name });

export const nameUnknown = (name: string) =>
  new OciError('NAME_UNKNOWN', 'repository name not known to registry', { name });

export const sizeInvalid = (reason: string, detail?: unknown) =>
  new OciError('SIZE_INVALID', `provided length did not match content length: ${reason}`, detail);

export const unsupported = (reason: string, detail?: unknown) =>
  new OciError('UNSUPPORTED', `the operation is unsupported: ${reason}`, detail);

/** Where an upload stands: the next chunk must start at `offset`. */
export interface UploadPosition {
  name: string;
  uploadId: string;
  offset: number;
}

/**
 * A chunk that does not continue the upload (RANGE_INVALID). It carries the upload's position so that the answer
 * can tell the client where to resume (the HTTP layer sets `Range` and `Location` on the 416).
 */
export class UploadRangeError extends OciError {
  readonly position: UploadPosition;

  constructor(message: string, position: UploadPosition, detail?: unknown, options?: ErrorOptions) {
    super('RANGE_INVALID', message, detail, options);
    this.position = position;
  }
}

/** Out-of-order chunk: the client should resume from `position.offset`. */
export const rangeInvalid = (position: UploadPosition, got: string) =>
  new UploadRangeError(`chunk out of order: expected a Content-Range starting at ${position.offset}`, position, {
    expectedStart: position.offset,
    contentRange: got,
  });

export const payloadTooLarge = (message: string, detail?: unknown) =>
  new OciError('PAYLOAD_TOO_LARGE', message, detail);

/** A compare-and-set lost to another writer (two PATCHes of one upload at once). */
export const uploadConflict = (name: string, uploadId: string) =>
  new OciError('RANGE_INVALID', 'upload was modified concurrently; GET the upload for its offset and retry', {
    name,
    uploadId,
  });

/**
 * The backend refused for capacity (DynamoDB throttling) after bounded retries: the client should come back in
 * `retryAfterSeconds`, which the HTTP layer sends as `Retry-After`.
 */
export const tooManyRequests = (reason: string, retryAfterSeconds: number, options?: ErrorOptions) =>
  new OciError('TOOMANYREQUESTS', `too many requests: ${reason}`, { retryAfterSeconds }, options);

/** The `Retry-After` seconds a TOOMANYREQUESTS error carries, if any. */
export function retryAfterSecondsOf(error: OciError): number | undefined {
  if (error.code !== 'TOOMANYREQUESTS') return undefined;
  const seconds = (error.detail as { retryAfterSeconds?: unknown } | null | undefined)?.retryAfterSeconds;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds) : undefined;
}

/** A push that would move an immutable tag: DENIED (403) with the rule in the message, which docker prints. */
export const tagImmutable = (name: string, tag: string, current: string, rule: { glob: string; mutableTags: string[] }) =>
  new OciError(
    'DENIED',
    `tag ${tag} is immutable in ${name} (policy ${rule.glob}: tags are immutable${rule.mutableTags.length > 0 ? ` except ${rule.mutableTags.join(', ')}` : ''}); it points at ${current}: push under a new tag`,
    { name, tag, current, policy: rule.glob },
  );

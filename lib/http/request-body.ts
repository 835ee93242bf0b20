import { OciError } from '../registry/errors.ts';
import type { HttpRequest } from './types.ts';

/**
 * The body length the client declared: Content-Length, else unknown for a chunked transfer, else 0
 * (a request with neither has no body).
 */
export function declaredLength(request: HttpRequest): number | undefined {
  const header = request.headers.get('content-length');
  if (header !== null) {
    const length = Number(header);
    if (!Number.isSafeInteger(length) || length < 0) throw new OciError('SIZE_INVALID', 'invalid Content-Length', { contentLength: header });
    return length;
  }
  return request.headers.has('transfer-encoding') ? undefined : 0;
}

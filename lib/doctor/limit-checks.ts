import { randomBytes } from 'node:crypto';
import { fail, pass, skip, type Check } from './check.ts';
import { headerValue, showBody, type DoctorSession } from './doctor-session.ts';

/**
 * What a client sees when its request body is too large: the registry's own 413 (an OCI error body) for a chunk
 * over `OCI-Chunk-Max-Length`, and the gateway's 413 for a body over the Lambda event limit (6 MB after base64),
 * whose body docker cannot parse:
 * `error parsing HTTP 413 response body: no error details found in HTTP response body: "{\"message\":\"Request Entity Too Large\"}"`.
 */

const MiB = 1024 * 1024;
/** Over Lambda's 6 MB synchronous event once base64-encoded (×4/3), under the HTTP API's 10 MiB request quota. */
export const OVER_GATEWAY_BYTES = 7 * MiB;
/** The body API Gateway sends with its own 413 (docs/aws-assumptions.md). */
export const GATEWAY_413_BODY = '{"message":"Request Entity Too Large"}';

const WAY_OUT = 'docker push cannot send such a layer through this registry: push with `ocireg push` (chunks ≤ OCI-Chunk-Max-Length) or put `ocireg proxy` in front of docker (README "Troubleshooting")';

/** Opens an upload, PATCHes `size` bytes with Content-Length, cancels the upload; returns what the PATCH got. */
async function oversizedPatch(session: DoctorSession, size: number) {
  const post = await session.request('POST', session.path('blobs/uploads/'));
  const location = headerValue(post.headers, 'location');
  if (post.status !== 202 || location === undefined) return { post };
  const url = session.client.url(location, session.base);
  session.openUploads.add(url.href);
  let patch;
  try {
    patch = await session.request('PATCH', url, { headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${size - 1}` }, body: randomBytes(size) });
  } catch (error) {
    return { post, error: error as Error };
  }
  return { post, patch };
}

function describeBody(body: Buffer): string {
  const text = body.toString('utf8').trim();
  if (text === GATEWAY_413_BODY) return `the gateway's own body ${text} (docker shows: error parsing HTTP 413 response body)`;
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ code?: string }> };
    if (parsed.errors?.[0]?.code) return `an OCI error body ${showBody(body)}`;
  } catch {
    // not JSON: reported as is
  }
  return `an unexpected body ${showBody(body)}`;
}

function isExplained(body: Buffer): boolean {
  return !describeBody(body).startsWith('an unexpected');
}

function overLimitCheck(id: string, title: string, size: (max: number) => number | undefined): Check {
  return {
    id,
    title,
    needs: ['push-monolithic'],
    async run(session) {
      const max = session.chunkMaxLength;
      const bytes = max === undefined ? undefined : size(max);
      if (max === undefined || bytes === undefined) {
        return skip('nothing sent', max === undefined ? 'no OCI-Chunk-Max-Length: this registry takes bodies of any size' : `OCI-Chunk-Max-Length ${max} is above ${OVER_GATEWAY_BYTES} bytes`, 'nothing to check');
      }
      const sent = `POST, then PATCH <Location> with ${bytes} bytes (Content-Length, Content-Range 0-${bytes - 1}), then DELETE the upload`;
      const { post, patch, error } = await oversizedPatch(session, bytes);
      if (!patch) {
        if (error) return fail(sent, `the connection failed instead of an answer: ${error.message}`, `clients get no explanation at all: ${WAY_OUT}`);
        return fail(sent, `POST ${post.status} ${showBody(post.body)}`, 'the upload could not be opened: see push-monolithic');
      }
      const observed = `${patch.status} with ${describeBody(patch.body)}`;
      if (patch.status !== 413) return fail(sent, observed, `a body over the limit must be refused with 413 (a 2xx means the limit is wrong, a 5xx leaves clients guessing). ${WAY_OUT}`);
      if (!isExplained(patch.body)) return fail(sent, observed, `the 413's body is neither an OCI error nor the body README quotes; report it with this row. ${WAY_OUT}`);
      return pass(sent, `${observed}. ${WAY_OUT}`);
    },
  };
}

export const overChunkLimitCheck = overLimitCheck('over-chunk-limit', 'a chunk of OCI-Chunk-Max-Length + 1 bytes: 413 with an explanation', (max) => max + 1);

export const overGatewayLimitCheck = overLimitCheck('over-gateway-limit', `a ${OVER_GATEWAY_BYTES / MiB} MiB body (over Lambda's 6 MB event): 413 from the gateway`, (max) =>
  max < OVER_GATEWAY_BYTES ? OVER_GATEWAY_BYTES : undefined,
);

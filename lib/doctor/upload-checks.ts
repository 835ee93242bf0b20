import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { fail, Findings, pass, check } from './check.ts';
import { headerValue, showBody, showHeaders, type DoctorSession } from './doctor-session.ts';
import { digestOf } from '../registry/digest.ts';

/**
 * Blob uploads the way each client family sends them: monolithic PUT (containerd, buildkit, oras), one streamed PATCH without Content-Length (docker classic),
 * and ordered chunks no larger than `OCI-Chunk-Max-Length` (ocireg push, regctl).
 */

const KiB = 1024;
const MiB = 1024 * KiB;
/** S3's smallest multipart part (all but the last). */
const MIN_PART_SIZE = 5 * MiB;
/** The large blob: over two S3 parts, so the multipart path is used with ≥ 3 parts. */
export const LARGE_BLOB_SIZE = 12 * MiB;
/** ocireg push's chunk when the registry advertises no maximum. */
const DEFAULT_CHUNK = 4 * MiB;

export const monolithicPushCheck = check({ id: 'push-monolithic', title: 'blob push by POST + monolithic PUT ?digest= (containerd, buildkit, oras)', needs: ['base'] }, async (session) => {
  const layer = randomBytes(64 * KiB);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(layer)] }, config: { Labels: { 'ocireg.doctor': session.repository } } }),
  );
  const empty = Buffer.from('{}');
  const sent = `POST ${session.path('blobs/uploads/')}, then PUT <Location>?digest=… with the whole blob (Content-Length), for a config (${config.length} bytes), a layer (${layer.length} bytes) and the empty descriptor {}`;
  const observations: string[] = [];
  const findings = new Findings();
  for (const [role, bytes] of [['config', config], ['layer', layer], ['empty', empty]] as const) {
    const { post, put, digest } = await session.pushMonolithic(role, bytes);
    if (role === 'config') {
      const max = headerValue(post.headers, 'oci-chunk-max-length');
      if (max !== undefined && /^\d+$/.test(max)) session.chunkMaxLength = Number(max);
    }
    const returned = put && headerValue(put.headers, 'docker-content-digest');
    observations.push(`${role}: POST ${post.status}${put ? `, PUT ${put.status}` : ''}`);
    if (!findings.expect(post.status === 202 && headerValue(post.headers, 'location') !== undefined, `POST for the ${role} answered ${post.status} ${showBody(post.body)}`, pushAdvice(post.status))) break;
    if (!findings.expect(put?.status === 201, `PUT of the ${role} answered ${put?.status} ${showBody(put?.body ?? Buffer.alloc(0))}`, pushAdvice(put?.status ?? 0))) break;
    findings.expect(returned === undefined || returned === digest, `Docker-Content-Digest ${returned} differs from ${digest}`, 'the registry stored different bytes than were sent: check the function logs');
  }
  return findings.outcome(sent, observations.join('; '));
});

function pushAdvice(status: number): string {
  if (status === 401 || status === 403) return 'the user of --creds may not push: grant it `ocireg grants set <user> "ocireg-doctor/*" delete` (or make it an admin)';
  if (status === 413) return 'the request body was refused as too large: see the over-limit rows and README "Troubleshooting"';
  return 'check the function logs (or the `ocireg serve` log) for this request';
}

export const chunkMaxLengthCheck = check({ id: 'chunk-max-length', title: 'OCI-Chunk-Max-Length on the upload POST', needs: ['push-monolithic'] }, async (session) => {
  const sent = `POST ${session.path('blobs/uploads/')}`;
  const max = session.chunkMaxLength;
  if (max === undefined) return pass(sent, 'OCI-Chunk-Max-Length: (absent): the registry sets no body limit of its own, clients send blobs whole');
  if (max < 1) return fail(sent, `OCI-Chunk-Max-Length: ${max}`, 'the advertised maximum must be a positive number of bytes');
  return pass(sent, `OCI-Chunk-Max-Length: ${max} (${(max / MiB).toFixed(2)} MiB): ocireg push and regctl send chunks of at most this size`);
});

export const streamedPatchCheck = check({ id: 'push-chunked-transfer', title: 'blob push by POST + one PATCH with Transfer-Encoding: chunked, no Content-Length (docker classic)', needs: ['push-monolithic'] }, async (session) => {
  // Under the advertised maximum: docker streams a whole layer in its PATCH, but a body the registry refuses
  // for its size is the over-limit row's subject, not this one's.
  const size = Math.min(MiB + 17, session.chunkMaxLength ?? Infinity);
  const bytes = randomBytes(size);
  const digest = digestOf(bytes);
  const sent = `POST ${session.path('blobs/uploads/')}, PATCH <Location> with ${size} bytes as Transfer-Encoding: chunked (no Content-Length, no Content-Range), PUT <Location>?digest=… with no body`;
  const findings = new Findings();
  const post = await session.request('POST', session.path('blobs/uploads/'));
  const location = headerValue(post.headers, 'location');
  if (post.status !== 202 || location === undefined) return fail(sent, `POST ${post.status} ${showBody(post.body)}`, pushAdvice(post.status));
  const patchUrl = session.client.url(location, session.base);
  session.openUploads.add(patchUrl.href);
  // A stream factory: the transport then sends Transfer-Encoding: chunked, as Go's client does for an unknown length.
  const patch = await session.request('PATCH', patchUrl, {
    headers: { 'content-type': 'application/octet-stream' },
    body: () => Readable.from(chunksOf(bytes, 64 * KiB)),
  });
  const range = headerValue(patch.headers, 'range');
  let observed = `PATCH ${patch.status}, ${showHeaders(patch.headers, ['range'])}`;
  const gateway = 'a front that does not accept chunked request bodies breaks docker push: check the function logs for this PATCH; `ocireg push` and `ocireg proxy` send Content-Length';
  if (!findings.expect(patch.status === 202, `PATCH answered ${patch.status} ${showBody(patch.body)}`, gateway)) return findings.outcome(sent, observed);
  findings.expect(range === `0-${size - 1}`, `Range ${range} after ${size} bytes (expected 0-${size - 1}: the body arrived truncated or altered)`, gateway);
  const putUrl = session.client.url(headerValue(patch.headers, 'location') ?? location, session.base);
  putUrl.searchParams.set('digest', digest);
  const put = await session.request('PUT', putUrl);
  observed += `; PUT ${put.status}, ${showHeaders(put.headers, ['docker-content-digest'])}`;
  if (findings.expect(put.status === 201, `PUT answered ${put.status} ${showBody(put.body)}`, `the streamed bytes did not make the blob (a digest mismatch means the body was altered on the way): ${gateway}`)) {
    session.openUploads.delete(patchUrl.href);
    session.blobs.set('streamed', { digest, bytes });
  }
  return findings.outcome(sent, observed);
});

/**
 * Chunk sizes for the large blob: each S3 part boundary (every 5 MiB) is also a chunk boundary, so a store that
 * flushes a part once it buffered 5 MiB makes parts of exactly 5 MiB — ≥ 3 parts for 12 MiB — and no chunk is
 * larger than the advertised maximum. With a 4 MiB maximum: 4, 1, 4, 1, 2 MiB.
 */
export function chunkPlan(size: number, max: number): number[] {
  const plan: number[] = [];
  for (let partStart = 0; partStart < size; partStart += MIN_PART_SIZE) {
    let left = Math.min(MIN_PART_SIZE, size - partStart);
    while (left > 0) {
      const chunk = Math.min(left, max);
      plan.push(chunk);
      left -= chunk;
    }
  }
  return plan;
}

export const largeChunkedCheck = check({ id: 'push-large-chunked', title: `${LARGE_BLOB_SIZE / MiB} MiB blob in ordered chunks ≤ OCI-Chunk-Max-Length (the S3 multipart path, ≥ 3 parts)`, needs: ['push-monolithic'] }, async (session) => {
  const bytes = randomBytes(LARGE_BLOB_SIZE);
  const digest = digestOf(bytes);
  const plan = chunkPlan(bytes.length, session.chunkMaxLength ?? DEFAULT_CHUNK);
  const sent = `POST, ${plan.length} PATCHes with Content-Range and Content-Length (${plan.map((size) => (size / MiB).toFixed(size % MiB ? 2 : 0)).join(' + ')} MiB), PUT ?digest=${digest.slice(0, 19)}…`;
  const post = await session.request('POST', session.path('blobs/uploads/'));
  let location = headerValue(post.headers, 'location');
  if (post.status !== 202 || location === undefined) return fail(sent, `POST ${post.status} ${showBody(post.body)}`, pushAdvice(post.status));
  const uploadUrl = session.client.url(location, session.base).href;
  session.openUploads.add(uploadUrl);
  let offset = 0;
  for (const [index, size] of plan.entries()) {
    const chunk = bytes.subarray(offset, offset + size);
    const patch = await session.request('PATCH', session.client.url(location, session.base), {
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + size - 1}` },
      body: chunk,
    });
    if (patch.status !== 202) {
      return fail(sent, `PATCH ${index + 1} of ${plan.length} (${size} bytes at ${offset}) answered ${patch.status}: ${showBody(patch.body)}`, chunkAdvice(patch.status));
    }
    offset += size;
    location = headerValue(patch.headers, 'location') ?? location;
  }
  const putUrl = session.client.url(location, session.base);
  putUrl.searchParams.set('digest', digest);
  const put = await session.request('PUT', putUrl);
  const returned = headerValue(put.headers, 'docker-content-digest');
  if (put.status !== 201) return fail(sent, `${plan.length} PATCHes 202; PUT ${put.status}: ${showBody(put.body)}`, chunkAdvice(put.status));
  session.openUploads.delete(uploadUrl);
  session.blobs.set('large', { digest, bytes });
  if (returned !== undefined && returned !== digest) return fail(sent, `PUT 201 with Docker-Content-Digest ${returned}`, 'the registry committed other bytes than were sent: check the function logs');
  return pass(sent, `${plan.length} PATCHes 202; PUT 201, Docker-Content-Digest ${returned === undefined ? '(absent)' : 'as sent'} (read back by blob-read-large)`);
});

function chunkAdvice(status: number): string {
  if (status === 413) return 'a chunk no larger than OCI-Chunk-Max-Length was refused: the advertised maximum does not fit what the front accepts; lower maxChunkLength on the construct';
  if (status === 400 || status === 500) return 'assembling a blob from chunks failed (on AWS: the S3 multipart upload): check the function logs for the request; docs/aws-assumptions.md lists what S3 must accept';
  return pushAdvice(status);
}

function* chunksOf(bytes: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

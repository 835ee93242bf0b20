import { Findings, fail, pass, check, type Check } from './check.ts';
import { headerValue, showHeaders, showUrl, type DoctorSession, type PushedBlob } from './doctor-session.ts';
import { digestOf } from '../registry/digest.ts';

/**
 * Blob reads as pulls make them: HEAD for the size (followed through a 307 like Go clients do), GET answered by
 * a 307 to a presigned S3 URL (or streamed by the registry), ranged GETs on where the bytes are.
 */

/** The advice when a blob HEAD loses its size: the construct prop that makes S3 answer the HEAD itself. */
export const BLOB_HEAD_REDIRECT_ADVICE =
  'the front in front of the registry changes Content-Length on HEAD responses; docker and containerd take blob sizes from HEAD, so pulls and re-pushes fail ' +
  '("Target.Size must be greater than zero"). Deploy with the construct prop `blobHeadRedirect: true` (new OciRegistry(this, id, { blobHeadRedirect: true })): ' +
  'blob HEADs are then answered by a 307 to a presigned S3 HEAD URL, and the size comes from S3 itself (try it locally with `npm run dev:aws -- --blob-head-redirect`)';

const OCTET_STREAM = new Set(['application/octet-stream', 'binary/octet-stream']);

function blobHeadCheck(id: string, role: string): Check {
  return {
    id,
    title: `blob HEAD (${role} blob): Content-Length, Docker-Content-Digest, Content-Type`,
    needs: [role === 'large' ? 'push-large-chunked' : 'push-monolithic'],
    async run(session) {
      const blob = session.blobs.get(role)!;
      const path = session.path(`blobs/${blob.digest}`);
      const sent = `HEAD ${path} (${blob.bytes.length} bytes; redirects followed as Go clients do)`;
      const hops = await session.follow('HEAD', path);
      const final = hops.at(-1)!;
      const redirected = hops.length > 1;
      const observed = `${hops.map((hop) => hop.status).join(' → ')}${redirected ? ` (via ${showUrl(final.url)})` : ''}, ${showHeaders(final.headers, ['content-length', 'content-type'])}, Docker-Content-Digest: ${registryDigest(hops) ?? '(absent)'}`;
      const findings = new Findings();
      if (!findings.expect(final.status === 200, `status ${final.status}`, redirected ? 'the redirect target refused the HEAD: a presigned URL signed for GET cannot serve HEAD (S3 answers 403); check the function version' : 'the blob just pushed cannot be found: check the function logs')) {
        return findings.outcome(sent, observed);
      }
      const length = headerValue(final.headers, 'content-length');
      findings.expect(
        length === String(blob.bytes.length),
        `Content-Length ${length ?? '(absent)'} instead of ${blob.bytes.length}`,
        redirected ? 'the redirect target reports another size than the registry stored: report it with this row' : BLOB_HEAD_REDIRECT_ADVICE,
      );
      findings.expect(registryDigest(hops) === blob.digest, `Docker-Content-Digest is not ${blob.digest}`, 'a front that drops Docker-Content-Digest hides which blob clients got');
      const type = headerValue(final.headers, 'content-type')?.split(';')[0]?.trim();
      findings.expect(type !== undefined && OCTET_STREAM.has(type), `Content-Type ${type ?? '(absent)'} instead of application/octet-stream`, 'blobs are served as application/octet-stream: a front rewrote the type');
      return findings.outcome(sent, observed);
    },
  };
}

/** The registry's Docker-Content-Digest, on the 307 or on the final answer. */
function registryDigest(hops: Array<{ headers: Record<string, string | string[] | undefined> }>): string | undefined {
  for (const hop of hops) {
    const value = headerValue(hop.headers, 'docker-content-digest');
    if (value !== undefined) return value;
  }
  return undefined;
}

export const blobHeadCheck64k = blobHeadCheck('blob-head', 'layer');
export const blobHeadLargeCheck = blobHeadCheck('blob-head-large', 'large');

/** GET a blob without following, so the row can say whether it was a redirect; then read where it points. */
async function firstHop(session: DoctorSession, blob: PushedBlob) {
  const path = session.path(`blobs/${blob.digest}`);
  const first = await session.request('GET', path);
  const location = headerValue(first.headers, 'location');
  const target = first.status === 307 && location !== undefined ? new URL(location, first.url) : undefined;
  return { path, first, target };
}

export const blobGetRangeCheck = check({ id: 'blob-get-range', title: 'blob GET: 307 to the bytes (or 200 when streamed), then a ranged GET', needs: ['push-monolithic'] }, async (session) => {
  const blob = session.blobs.get('layer')!;
  const { path, first, target } = await firstHop(session, blob);
  const start = 1000;
  const end = 5095;
  const range = `bytes=${start}-${end}`;
  const where = target ?? session.client.url(path);
  const sent = `GET ${path}, then GET ${target ? showUrl(target) : path} with Range: ${range}`;
  const findings = new Findings();
  let observed = `${first.status}${target ? ` → ${showUrl(target)}` : ''}`;
  if (!findings.expect(first.status === 307 ? target !== undefined : first.status === 200, `GET answered ${first.status}`, 'a blob GET must answer 307 with a Location or 200 with the bytes: check the function logs')) {
    return findings.outcome(sent, observed);
  }
  if (first.status === 200) findings.expect(digestOf(first.body) === blob.digest, `the streamed body's digest is ${digestOf(first.body)}`, 'the bytes were altered on the way');
  const ranged = target ? await session.raw('GET', target, { headers: { range } }) : await session.request('GET', where, { headers: { range } });
  observed += `; ranged GET ${ranged.status}, ${showHeaders(ranged.headers, ['content-range', 'content-length'])}`;
  findings.expect(
    ranged.status === 206 && ranged.body.equals(blob.bytes.subarray(start, end + 1)),
    `ranged GET answered ${ranged.status} with ${ranged.body.length} bytes that ${ranged.body.equals(blob.bytes.subarray(start, end + 1)) ? 'match' : 'do not match'} bytes ${start}-${end}`,
    target
      ? 'the presigned URL does not serve ranges: resumed and parallel pulls (containerd) fail; check the bucket and the presigning credentials (an expired session makes presigned URLs 403)'
      : 'the registry does not serve byte ranges: containerd resumes pulls with Range',
  );
  return findings.outcome(sent, observed);
});

export const blobReadLargeCheck = check({ id: 'blob-read-large', title: 'the chunked blob read back whole: digest verified', needs: ['push-large-chunked'] }, async (session) => {
  const blob = session.blobs.get('large')!;
  const path = session.path(`blobs/${blob.digest}`);
  const sent = `GET ${path} (redirects followed), SHA-256 of the ${blob.bytes.length} bytes`;
  const hops = await session.follow('GET', path);
  const final = hops.at(-1)!;
  const digest = digestOf(final.body);
  const observed = `${hops.map((hop) => hop.status).join(' → ')}, ${final.body.length} bytes, ${digest}`;
  if (final.status !== 200) return fail(sent, observed, 'the blob cannot be read back: check the function logs (and on AWS that the presigned URL is not expired)');
  if (digest !== blob.digest) return fail(sent, observed, 'a blob assembled from chunks was stored with other bytes: data corruption; report it with this row and stop pushing large images');
  return pass(sent, observed);
});

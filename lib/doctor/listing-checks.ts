import { MediaType } from '../registry/manifest.ts';
import { Findings, fail, pass, check } from './check.ts';
import { headerValue, showBody, showHeaders, type DoctorSession } from './doctor-session.ts';
import { digestOf } from '../registry/digest.ts';

/**
 * Referrers and tag listings as the spec has them (v1.1.1 "Listing Referrers", "Listing Tags"): a referrer
 * pushed with a `subject` answers `OCI-Subject` and is listed; `n` pages tags with a `Link: <…>; rel="next"`.
 */

const OCI_MANIFEST = MediaType.ociManifest;
const OCI_INDEX = MediaType.ociIndex;
const ARTIFACT_TYPE = 'application/vnd.ocireg.doctor.v1';
const MORE_TAGS = ['doctor-2', 'doctor-3'];

export const referrersCheck = check({ id: 'referrers', title: 'referrers: a manifest with a subject is listed', needs: ['manifest-put'] }, async (session) => {
  const image = session.manifests.get('image')!;
  const empty = session.blobs.get('empty')!;
  const emptyDescriptor = { mediaType: MediaType.ociEmpty, digest: empty.digest, size: empty.bytes.length };
  const referrer = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: ARTIFACT_TYPE,
    config: emptyDescriptor,
    layers: [emptyDescriptor],
    subject: { mediaType: image.mediaType, digest: image.digest, size: image.bytes.length },
  };
  const bytes = Buffer.from(JSON.stringify(referrer));
  const digest = digestOf(bytes);
  const sent = `PUT ${session.path(`manifests/${digest.slice(0, 19)}…`)} (artifactType ${ARTIFACT_TYPE}, subject the image), GET ${session.path(`referrers/${image.digest.slice(0, 19)}…`)}?artifactType=${ARTIFACT_TYPE}`;
  const put = await session.request('PUT', session.path(`manifests/${digest}`), { headers: { 'content-type': OCI_MANIFEST }, body: bytes });
  let observed = `PUT ${put.status}, ${showHeaders(put.headers, ['oci-subject'])}`;
  if (put.status !== 201) return fail(sent, `${observed}: ${showBody(put.body)}`, 'signatures and SBOMs (cosign, notation, oras attach) cannot be stored: check the function logs');
  session.manifests.set('referrer', { digest, mediaType: OCI_MANIFEST, bytes });
  const findings = new Findings();
  findings.expect(headerValue(put.headers, 'oci-subject') === image.digest, 'no OCI-Subject header', 'without OCI-Subject, clients fall back to the tag schema; check that the front passes the header');
  const list = await session.request('GET', `${session.path(`referrers/${image.digest}`)}?artifactType=${encodeURIComponent(ARTIFACT_TYPE)}`);
  observed += `; GET ${list.status}, ${showHeaders(list.headers, ['content-type', 'oci-filters-applied'])}`;
  let listed: Array<{ digest?: string; artifactType?: string }> = [];
  try {
    listed = (JSON.parse(list.body.toString('utf8')) as { manifests?: typeof listed }).manifests ?? [];
  } catch {
    // reported below
  }
  findings.expect(list.status === 200 && listed.some((entry) => entry.digest === digest && entry.artifactType === ARTIFACT_TYPE), `the referrer is not listed: ${showBody(list.body)}`, 'the referrers index is not updated on push: check the function logs');
  findings.expect(headerValue(list.headers, 'content-type')?.startsWith(OCI_INDEX) === true, `Content-Type is not ${OCI_INDEX}`, 'a referrers response is an image index');
  return findings.outcome(sent, `${observed}, ${listed.length} referrer(s)`);
});

/** `Link: <url>; rel="next"` → url, or undefined (angle brackets required, RFC 8288). */
function nextLink(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /<([^>]+)>\s*;\s*rel="?next"?/.exec(header);
  return match?.[1];
}

export const tagListCheck = check({ id: 'tags-list', title: 'tag listing paged by n with a Link to the next page', needs: ['manifest-put'] }, async (session) => {
  const image = session.manifests.get('image')!;
  const findings = new Findings();
  const observations: string[] = [];
  for (const tag of MORE_TAGS) {
    const put = await session.request('PUT', session.path(`manifests/${tag}`), { headers: { 'content-type': image.mediaType }, body: image.bytes });
    if (!findings.expect(put.status === 201, `tagging ${tag} answered ${put.status}`, 'check the function logs')) break;
    session.tags.push(tag);
  }
  const expected = [...session.tags].sort();
  const sent = `PUT 2 more tags, GET ${session.path('tags/list')}?n=2, then the Link's URL`;
  const first = await session.request('GET', `${session.path('tags/list')}?n=2`);
  const link = headerValue(first.headers, 'link');
  const firstTags = tagsOf(first.body);
  observations.push(`n=2: ${first.status} ${JSON.stringify(firstTags)}, Link: ${link ?? '(absent)'}`);
  const seen = [...firstTags];
  findings.expect(first.status === 200 && firstTags.length === 2, `the first page holds ${firstTags.length} tags`, 'the registry ignores n: clients that page (crane, skopeo list-tags) get everything in one response, which fails once it exceeds 6 MB on AWS');
  const next = nextLink(link);
  if (findings.expect(next !== undefined, 'no Link: <…>; rel="next" on a partial page', 'clients stop paging without the Link header (angle brackets included): check that the front passes Link')) {
    const second = await session.request('GET', new URL(next!, first.url));
    const secondTags = tagsOf(second.body);
    observations.push(`next: ${second.status} ${JSON.stringify(secondTags)}, Link: ${headerValue(second.headers, 'link') ?? '(absent)'}`);
    seen.push(...secondTags);
  }
  findings.expect(JSON.stringify([...seen].sort()) === JSON.stringify(expected), `the pages hold ${JSON.stringify(seen)}, not ${JSON.stringify(expected)}`, 'paging loses or repeats tags: check the last= handling');
  return findings.outcome(sent, observations.join('; '));
});

function tagsOf(body: Buffer): string[] {
  try {
    const tags = (JSON.parse(body.toString('utf8')) as { tags?: unknown }).tags;
    return Array.isArray(tags) ? tags.filter((tag): tag is string => typeof tag === 'string') : [];
  } catch {
    return [];
  }
}

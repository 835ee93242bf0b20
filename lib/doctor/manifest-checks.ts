import { MediaType } from '../registry/manifest.ts';
import { Findings, fail, pass, check } from './check.ts';
import { headerValue, showBody, showHeaders, type DoctorSession } from './doctor-session.ts';
import { digestOf } from '../registry/digest.ts';

/** A small image's manifest pushed by tag, then read by HEAD as containerd resolves a tag. */

const OCI_MANIFEST = MediaType.ociManifest;
export const FIRST_TAG = 'doctor-1';

function descriptor(session: DoctorSession, role: string, mediaType: string) {
  const blob = session.blobs.get(role)!;
  return { mediaType, digest: blob.digest, size: blob.bytes.length };
}

export const manifestPushCheck = check({ id: 'manifest-put', title: `manifest PUT by tag (${FIRST_TAG})`, needs: ['push-monolithic'] }, async (session) => {
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptor(session, 'config', MediaType.ociConfig),
    layers: [descriptor(session, 'layer', MediaType.ociLayer)],
    annotations: { 'org.opencontainers.image.description': 'pushed by ocireg doctor; it removes it when done' },
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = digestOf(bytes);
  const sent = `PUT ${session.path(`manifests/${FIRST_TAG}`)} (${OCI_MANIFEST}, ${bytes.length} bytes, ${digest.slice(0, 19)}…)`;
  const response = await session.request('PUT', session.path(`manifests/${FIRST_TAG}`), { headers: { 'content-type': OCI_MANIFEST }, body: bytes });
  const observed = `${response.status}, ${showHeaders(response.headers, ['docker-content-digest', 'location'])}`;
  if (response.status !== 201) return fail(sent, `${observed}: ${showBody(response.body)}`, 'check the function logs for this request');
  session.manifests.set('image', { digest, mediaType: OCI_MANIFEST, bytes });
  session.tags.push(FIRST_TAG);
  const returned = headerValue(response.headers, 'docker-content-digest');
  if (returned !== undefined && returned !== digest) return fail(sent, observed, 'the registry computed another digest for the manifest bytes: they were altered on the way');
  return pass(sent, observed);
});

/**
 * docker and containerd resolve a tag with HEAD and take the manifest's size from its Content-Length; 0 fails
 * their pulls ("Target.Size must be greater than zero" / a zero-length read).
 */
export const manifestHeadCheck = check({ id: 'manifest-head', title: 'manifest HEAD: Content-Length, Docker-Content-Digest, Content-Type', needs: ['manifest-put'] }, async (session) => {
  const manifest = session.manifests.get('image')!;
  const path = session.path(`manifests/${FIRST_TAG}`);
  const sent = `HEAD ${path} with Accept: ${OCI_MANIFEST} (redirects followed)`;
  const hops = await session.follow('HEAD', path, { accept: `${OCI_MANIFEST}, ${MediaType.ociIndex}` });
  const final = hops.at(-1)!;
  const observed = `${hops.map((hop) => hop.status).join(' → ')}, ${showHeaders(final.headers, ['content-length', 'docker-content-digest', 'content-type'])}`;
  const findings = new Findings();
  const length = headerValue(final.headers, 'content-length');
  if (!findings.expect(final.status === 200, `status ${final.status}`, 'the manifest just pushed cannot be found: check the function logs')) return findings.outcome(sent, observed);
  findings.expect(
    length === String(manifest.bytes.length),
    `Content-Length ${length ?? '(absent)'} instead of ${manifest.bytes.length}`,
    `the front in front of the registry changes Content-Length on HEAD responses; containerd and docker take a manifest's size from it and fail pulls by tag. No construct prop serves manifest HEADs from S3: remove the front that rewrites HEAD responses (docs/aws-assumptions.md "HEAD Content-Length") and report it`,
  );
  findings.expect(hops.some((hop) => headerValue(hop.headers, 'docker-content-digest') === manifest.digest), `Docker-Content-Digest is not ${manifest.digest}`, 'clients check the digest of what they resolve: a front that drops Docker-Content-Digest breaks docker pull by tag');
  findings.expect(headerValue(final.headers, 'content-type') === manifest.mediaType, `Content-Type is not ${manifest.mediaType}`, 'clients pick the manifest parser by Content-Type: a front that rewrites it breaks pulls');
  return findings.outcome(sent, observed);
});

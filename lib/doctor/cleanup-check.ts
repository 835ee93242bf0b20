import { Findings, pass, check } from './check.ts';
import type { DoctorSession } from './doctor-session.ts';

/**
 * Removes what the doctor pushed — tags, then the referrer (it points at the image), then the image, then the
 * blobs, then uploads left open — and checks that nothing of it can still be read. Runs even after failures.
 */
export const cleanupCheck = check({ id: 'delete', title: 'delete: tags, manifests, blobs and open uploads removed, then gone' }, async (session) => {
  const sent = `DELETE ${session.tags.length} tag(s), ${session.manifests.size} manifest(s), ${session.blobs.size} blob(s), ${session.openUploads.size} open upload(s) in ${session.repository}`;
  if (session.tags.length + session.manifests.size + session.blobs.size + session.openUploads.size === 0) return pass('nothing to delete', 'nothing was pushed');
  const findings = new Findings();
  const statuses: string[] = [];
  const remove = async (what: string, path: string | URL, accepted: number[]) => {
    const response = await session.request('DELETE', path);
    statuses.push(`${what} ${response.status}`);
    findings.expect(accepted.includes(response.status), `DELETE of ${what} answered ${response.status}`, deleteAdvice(response.status, session));
  };
  // A tag deleted by its manifest's digest goes with it: 404 on the tag afterwards is fine.
  for (const tag of session.tags) await remove(`tag ${tag}`, session.path(`manifests/${tag}`), [202, 404]);
  for (const role of ['referrer', 'image']) {
    const manifest = session.manifests.get(role);
    if (manifest) await remove(`${role} manifest`, session.path(`manifests/${manifest.digest}`), [202]);
  }
  for (const [role, blob] of session.blobs) await remove(`${role} blob`, session.path(`blobs/${blob.digest}`), [202]);
  for (const upload of session.openUploads) await remove('open upload', new URL(upload), [204, 404]);

  const leftovers: string[] = [];
  for (const [role, manifest] of session.manifests) {
    const response = await session.request('HEAD', session.path(`manifests/${manifest.digest}`));
    if (response.status !== 404) leftovers.push(`${role} manifest (HEAD ${response.status})`);
  }
  for (const [role, blob] of session.blobs) {
    const response = await session.request('HEAD', session.path(`blobs/${blob.digest}`));
    if (response.status !== 404) leftovers.push(`${role} blob (HEAD ${response.status})`);
  }
  const tags = await session.request('GET', session.path('tags/list'));
  const listed = tags.status === 200 ? ((JSON.parse(tags.body.toString('utf8')) as { tags?: string[] | null }).tags ?? []) : [];
  if (listed.length > 0) leftovers.push(`tags ${JSON.stringify(listed)}`);
  findings.expect(leftovers.length === 0, `still there: ${leftovers.join(', ')}`, `delete them by hand (\`ocireg repos\` or DELETE requests); ${session.repository} is the doctor's own repository`);
  return findings.outcome(sent, `${statuses.join(', ')}; afterwards: manifests and blobs HEAD 404, tag list ${tags.status}${listed.length ? '' : ' (no tags)'}`);
});

function deleteAdvice(status: number, session: DoctorSession): string {
  if (status === 401 || status === 403) return `the user of --creds may not delete: grant it \`ocireg grants set <user> "ocireg-doctor/*" delete\`, then remove ${session.repository} by hand`;
  if (status === 405) return 'deletion is disabled on this registry: remove the doctor repository by hand';
  return 'check the function logs for this request';
}

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRegistryApp } from '../../lib/http/app.ts';
import type { RequestLog } from '../../lib/http/types.ts';
import { MediaType } from '../../lib/registry/manifest.ts';
import type { BlobStore, MetadataStore } from '../../lib/registry/ports.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { call, type CallOptions } from '../support/app-client.ts';
import { blobOf, imageManifest, randomBlob } from '../support/builders.ts';

const ZERO_DIGEST = `sha256:${'0'.repeat(64)}`;

/** A request a client may send by mistake (or on purpose): what it is, and how to send it once `name` exists. */
interface Malformed {
  what: string;
  method: string;
  url: (name: string, upload: string) => string;
  options?: CallOptions;
  /** The status when the right answer is not an error (the spec says to fall back, or to ignore the field). */
  tolerated?: number[];
}

const MALFORMED: Malformed[] = [
  { what: 'an upper-case repository name', method: 'GET', url: () => '/v2/Team/App/tags/list' },
  { what: 'a repository name with ..', method: 'GET', url: () => '/v2/team/../app/manifests/v1' },
  { what: 'a repository name of 300 characters', method: 'GET', url: () => `/v2/${'a'.repeat(300)}/tags/list` },
  { what: 'a tag of 200 characters', method: 'GET', url: (name) => `/v2/${name}/manifests/${'t'.repeat(200)}` },
  { what: 'a digest with an unknown algorithm', method: 'GET', url: (name) => `/v2/${name}/blobs/md5:${'0'.repeat(32)}` },
  { what: 'a sha256 digest of the wrong length', method: 'HEAD', url: (name) => `/v2/${name}/blobs/sha256:abc` },
  { what: 'a manifest digest with upper-case hex', method: 'DELETE', url: (name) => `/v2/${name}/manifests/sha256:${'A'.repeat(64)}` },
  { what: 'n=-1', method: 'GET', url: (name) => `/v2/${name}/tags/list?n=-1` },
  { what: 'n=abc', method: 'GET', url: () => '/v2/_catalog?n=abc' },
  { what: 'n=1e400', method: 'GET', url: () => '/v2/_catalog?n=1e400' },
  { what: 'a last= of 5,000 characters', method: 'GET', url: (name) => `/v2/${name}/tags/list?last=${'z'.repeat(5000)}` },
  { what: 'referrers of a malformed digest', method: 'GET', url: (name) => `/v2/${name}/referrers/sha256:nothex` },
  { what: 'a manifest that is not JSON', method: 'PUT', url: (name) => `/v2/${name}/manifests/bad`, options: { body: '{not json', headers: { 'content-type': MediaType.ociManifest } } },
  { what: 'a manifest that is a JSON array', method: 'PUT', url: (name) => `/v2/${name}/manifests/bad`, options: { body: '[]', headers: { 'content-type': MediaType.ociManifest } } },
  { what: 'a manifest whose layers is a string', method: 'PUT', url: (name) => `/v2/${name}/manifests/bad`, options: { body: JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: 'x', digest: ZERO_DIGEST, size: 2 }, layers: 'nope' }), headers: { 'content-type': MediaType.ociManifest } } },
  { what: 'a manifest naming a malformed layer digest', method: 'PUT', url: (name) => `/v2/${name}/manifests/bad`, options: { body: JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: 'x', digest: 'sha256:zz', size: 2 }, layers: [] }), headers: { 'content-type': MediaType.ociManifest } } },
  { what: 'a manifest with a negative size', method: 'PUT', url: (name) => `/v2/${name}/manifests/bad`, options: { body: JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: 'x', digest: ZERO_DIGEST, size: -5 }, layers: [] }), headers: { 'content-type': MediaType.ociManifest } } },
  { what: 'a manifest under an unknown media type', method: 'PUT', url: (name) => `/v2/${name}/manifests/bad`, options: { body: '{}', headers: { 'content-type': 'application/x-unknown' } } },
  { what: 'a manifest PUT by a digest it does not hash to', method: 'PUT', url: (name) => `/v2/${name}/manifests/${ZERO_DIGEST}`, options: { body: '{}', headers: { 'content-type': MediaType.ociManifest } } },
  { what: 'a PATCH to an unknown upload', method: 'PATCH', url: (name) => `/v2/${name}/blobs/uploads/${randomBytes(8).toString('hex')}`, options: { body: 'abc' } },
  { what: 'a PATCH with a garbage Content-Range', method: 'PATCH', url: (name, upload) => `/v2/${name}/blobs/uploads/${upload}`, options: { body: 'abc', headers: { 'content-range': 'bytes=oops' } } },
  { what: 'a PATCH whose Content-Range starts past the upload', method: 'PATCH', url: (name, upload) => `/v2/${name}/blobs/uploads/${upload}`, options: { body: 'abc', headers: { 'content-range': '900-902' } } },
  { what: 'an upload closed without a digest', method: 'PUT', url: (name, upload) => `/v2/${name}/blobs/uploads/${upload}` },
  { what: 'an upload closed with a malformed digest', method: 'PUT', url: (name, upload) => `/v2/${name}/blobs/uploads/${upload}?digest=sha256:xyz` },
  { what: 'an upload closed with a digest its bytes do not have', method: 'PUT', url: (name, upload) => `/v2/${name}/blobs/uploads/${upload}?digest=${ZERO_DIGEST}`, options: { body: 'abc' } },
  { what: 'a monolithic POST with a malformed digest', method: 'POST', url: (name) => `/v2/${name}/blobs/uploads/?digest=nope`, options: { body: 'abc' } },
  // A mount that cannot happen falls back to an ordinary upload (distribution-spec: "Mounting a blob from another repository").
  { what: 'a mount from a malformed repository name', method: 'POST', url: (name) => `/v2/${name}/blobs/uploads/?mount=${ZERO_DIGEST}&from=UP/../x`, tolerated: [202] },
  { what: 'a mount of a malformed digest', method: 'POST', url: (name) => `/v2/${name}/blobs/uploads/?mount=sha256:x&from=other/repo` },
  { what: 'a blob GET with an unsatisfiable Range', method: 'GET', url: (name) => `/v2/${name}/blobs/${LAYER.digest}`, options: { headers: { range: 'bytes=99999-100000' } } },
  // RFC 9110 §14.2: a Range in a unit the server does not know is ignored: the whole blob, 200 (or S3's 307).
  { what: 'a blob GET with a Range in an unknown unit', method: 'GET', url: (name) => `/v2/${name}/blobs/${LAYER.digest}`, options: { headers: { range: 'lines=1-2' } }, tolerated: [200, 307] },
  { what: 'an unknown method on a manifest', method: 'PROPFIND', url: (name) => `/v2/${name}/manifests/v1` },
  { what: 'a percent-encoded NUL in the path', method: 'GET', url: () => '/v2/team%00app/tags/list' },
  { what: 'a malformed percent-encoding in the path', method: 'GET', url: () => '/v2/team%zzapp/tags/list' },
];

const CONFIG = blobOf('{"architecture":"amd64","os":"linux"}');
const LAYER = randomBlob(64);

/**
 * Malformed requests answer a clear OCI error below 500 on every backend: never a 500, never a stack trace. Each runs
 * against a repository that holds an image and an open upload, so the mistake, not a missing repository, is what the
 * registry has to judge.
 */
export function malformedRequestsContract(label: string, open: () => Promise<{ blobs: BlobStore; metadata: MetadataStore }>): void {
  describe(`malformed requests (${label})`, () => {
    it(`answers each of ${MALFORMED.length} malformed requests with an OCI error below 500, and logs no failure`, async () => {
      // Prepare
      const { blobs, metadata } = await open();
      const failures: RequestLog[] = [];
      const app = createRegistryApp({ registry: new Registry({ blobs, metadata }), log: (line, cause) => cause !== undefined && failures.push(line) });
      const name = `malformed-${randomBytes(4).toString('hex')}/app`;
      for (const blob of [CONFIG, LAYER]) expect((await call(app, 'POST', `/v2/${name}/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes })).status).toBe(201);
      const manifest = imageManifest(CONFIG, [LAYER]);
      expect((await call(app, 'PUT', `/v2/${name}/manifests/v1`, { body: manifest.bytes, headers: { 'content-type': manifest.mediaType } })).status).toBe(201);

      // Act
      const answers = [];
      for (const request of MALFORMED) {
        const started = await call(app, 'POST', `/v2/${name}/blobs/uploads/`);
        const upload = /\/blobs\/uploads\/([^/?]+)/.exec(started.headers.location ?? '')?.[1] ?? 'none';
        const response = await call(app, request.method, request.url(name, upload), request.options);
        answers.push({ what: request.what, status: response.status, body: response.body.toString('utf8'), tolerated: request.tolerated });
      }

      // Assess
      const wrong = answers.filter(({ status, body, tolerated }) =>
        tolerated !== undefined ? !tolerated.includes(status) : status >= 500 || status < 400 || (body !== '' && !/^\{"errors":\[\{"code":"[A-Z_]+","message":/.test(body)),
      );
      expect(wrong, JSON.stringify(wrong, null, 1)).toEqual([]);
      expect(answers.filter(({ tolerated }) => tolerated === undefined).map(({ body }) => body).join('\n')).not.toMatch(/\bat [\w.<>]+ \(|node:internal|\.ts:\d+/);
      expect(failures).toEqual([]);
      const pulled = await call(app, 'GET', `/v2/${name}/manifests/v1`, { headers: { accept: manifest.mediaType } });
      expect(pulled.body.equals(manifest.bytes)).toBe(true);
    });
  });
}

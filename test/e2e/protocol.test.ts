import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobOf, randomBlob, type Blob } from '../support/builders.ts';
import { sha256, sha256File } from '../support/digests.ts';
import { addRandomLayer, blobPath, buildRandomImage, fetchBlobDigest, fetchManifest, MiB, readLayoutImage, sameFileBytes, type LayoutImage } from '../support/images.ts';
import { startRegistryServer, type RegistryServer } from '../support/registry-server.ts';
import { describeFailure, requireTools, runTool } from '../support/tools.ts';

/**
 * Raw HTTP against `ocireg serve` for what the real clients do not exercise: chunked uploads and their errors,
 * invalid input, referrers, pagination, deletion, ranged reads, concurrent pushes and a crash mid-upload. After
 * every bad input a previously pushed image must still pull intact.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md
 */

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const EMPTY_JSON = 'application/vnd.oci.empty.v1+json';

interface PushedImage {
  name: string;
  tag: string;
  blobs: Blob[];
  manifest: Blob;
}

/** A Buffer as a fetch body (the DOM typings want an ArrayBuffer-backed view). */
const body = (bytes: Buffer): Uint8Array<ArrayBuffer> => new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);

let work: string;
let server: RegistryServer;
let reference: PushedImage;

const api = (path: string, init: RequestInit = {}) => fetch(`${server.url}${path}`, init);
const at = (location: string | null) => {
  expect(location, 'Location header').toBeTruthy();
  return new URL(location!, server.url).toString();
};

async function errorCode(response: Response): Promise<string | undefined> {
  const body = (await response.json()) as { errors?: Array<{ code: string }> };
  return body.errors?.[0]?.code;
}

/** POST, then one PUT ?digest= with the whole blob. */
async function pushBlob(name: string, blob: Blob): Promise<void> {
  const start = await api(`/v2/${name}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  const url = new URL(at(start.headers.get('location')));
  url.searchParams.set('digest', blob.digest);
  const put = await fetch(url, { method: 'PUT', body: body(blob.bytes), headers: { 'content-type': 'application/octet-stream' } });
  expect(put.status, await put.clone().text()).toBe(201);
}

function imageManifest(config: Blob, layers: Blob[], extra: Record<string, unknown> = {}): Blob {
  return blobOf(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
        layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size })),
        ...extra,
      }),
    ),
  );
}

async function putManifest(name: string, reference: string, manifest: Blob, mediaType = OCI_MANIFEST): Promise<Response> {
  return api(`/v2/${name}/manifests/${reference}`, { method: 'PUT', body: body(manifest.bytes), headers: { 'content-type': mediaType } });
}

async function pushImage(name: string, tag: string, layerSizes: number[] = [64 * 1024]): Promise<PushedImage> {
  const config = blobOf(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomUUID() })));
  const layers = layerSizes.map(randomBlob);
  for (const blob of [config, ...layers]) await pushBlob(name, blob);
  const manifest = imageManifest(config, layers);
  const put = await putManifest(name, tag, manifest);
  expect(put.status, await put.clone().text()).toBe(201);
  return { name, tag, blobs: [config, ...layers], manifest };
}

/** The image reads back by tag and by digest, every blob with its digest and size. */
async function expectIntact(image: PushedImage, baseUrl = server.url): Promise<void> {
  const byTag = await fetchManifest(baseUrl, image.name, image.tag);
  expect(byTag.status, `GET ${image.name}:${image.tag}`).toBe(200);
  expect(byTag.bytes.equals(image.manifest.bytes)).toBe(true);
  expect(byTag.headerDigest).toBe(image.manifest.digest);
  for (const blob of image.blobs) {
    expect(await fetchBlobDigest(baseUrl, image.name, blob.digest), `blob ${blob.digest}`).toEqual({ status: 200, digest: blob.digest, size: blob.size });
  }
}

beforeAll(async () => {
  await requireTools('skopeo', 'umoci', 'tar');
  work = await mkdtemp(join(tmpdir(), 'ocireg-protocol-'));
  server = await startRegistryServer();
  reference = await pushImage('team/reference', 'v1', [256 * 1024, 32 * 1024]);
});

afterAll(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('chunked uploads', () => {
  it('accepts three chunks with Content-Range in order and completes with an empty PUT ?digest=', async () => {
    // Prepare
    const blob = randomBlob(300_000);
    const cuts = [0, 100_000, 200_001, blob.size];
    const start = await api('/v2/team/chunked/blobs/uploads/', { method: 'POST' });
    expect(start.status).toBe(202);
    let location = at(start.headers.get('location'));

    // Act
    const ranges: Array<string | null> = [];
    for (let i = 0; i < 3; i++) {
      const chunk = blob.bytes.subarray(cuts[i]!, cuts[i + 1]!);
      const patch = await fetch(location, {
        method: 'PATCH',
        body: body(chunk),
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${cuts[i]}-${cuts[i + 1]! - 1}`, 'content-length': String(chunk.byteLength) },
      });
      expect(patch.status, await patch.clone().text()).toBe(202);
      ranges.push(patch.headers.get('range'));
      location = at(patch.headers.get('location'));
    }
    const url = new URL(location);
    url.searchParams.set('digest', blob.digest);
    const put = await fetch(url, { method: 'PUT' });

    // Assess
    expect(ranges).toEqual(['0-99999', '0-200000', `0-${blob.size - 1}`]);
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(blob.digest);
    expect(await fetchBlobDigest(server.url, 'team/chunked', blob.digest)).toEqual({ status: 200, digest: blob.digest, size: blob.size });
  });

  it('rejects an out-of-order chunk with 416, Range and Location; GET on the upload answers 204 with the Range received', async () => {
    // Prepare
    const blob = randomBlob(200_000);
    const start = await api('/v2/team/chunked/blobs/uploads/', { method: 'POST' });
    const first = await fetch(at(start.headers.get('location')), {
      method: 'PATCH',
      body: body(blob.bytes.subarray(0, 50_000)),
      headers: { 'content-type': 'application/octet-stream', 'content-range': '0-49999', 'content-length': '50000' },
    });
    expect(first.status).toBe(202);
    const location = at(first.headers.get('location'));

    // Act
    const skipped = await fetch(location, {
      method: 'PATCH',
      body: body(blob.bytes.subarray(60_000, 70_000)),
      headers: { 'content-type': 'application/octet-stream', 'content-range': '60000-69999', 'content-length': '10000' },
    });
    const repeated = await fetch(location, {
      method: 'PATCH',
      body: body(blob.bytes.subarray(0, 50_000)),
      headers: { 'content-type': 'application/octet-stream', 'content-range': '0-49999', 'content-length': '50000' },
    });
    const status = await fetch(location);

    // Assess
    expect(skipped.status).toBe(416);
    expect(skipped.headers.get('range')).toBe('0-49999');
    expect(skipped.headers.get('location')).toBeTruthy();
    expect(repeated.status).toBe(416);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-49999');
    expect(status.headers.get('docker-upload-uuid')).toBeTruthy();
    // The upload resumes where the registry says it stands.
    const rest = await fetch(at(skipped.headers.get('location')), {
      method: 'PATCH',
      body: body(blob.bytes.subarray(50_000)),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `50000-${blob.size - 1}`, 'content-length': String(blob.size - 50_000) },
    });
    expect(rest.status).toBe(202);
    const url = new URL(at(rest.headers.get('location')));
    url.searchParams.set('digest', blob.digest);
    expect((await fetch(url, { method: 'PUT' })).status).toBe(201);
    expect(await fetchBlobDigest(server.url, 'team/chunked', blob.digest)).toEqual({ status: 200, digest: blob.digest, size: blob.size });
    await expectIntact(reference);
  });

  it('answers 404 BLOB_UPLOAD_UNKNOWN for an upload that was never started', async () => {
    // Prepare
    const path = `/v2/team/reference/blobs/uploads/${randomUUID()}`;

    // Act
    const get = await api(path);
    const patch = await api(path, { method: 'PATCH', body: body(Buffer.from('abc')), headers: { 'content-type': 'application/octet-stream' } });
    const put = await api(`${path}?digest=${sha256('abc')}`, { method: 'PUT', body: body(Buffer.from('abc')) });

    // Assess
    for (const response of [get, patch, put]) {
      expect(response.status).toBe(404);
      expect(await errorCode(response)).toBe('BLOB_UPLOAD_UNKNOWN');
    }
    await expectIntact(reference);
  });
});

describe('invalid input', () => {
  it('refuses a blob whose bytes do not match the digest with 400 DIGEST_INVALID and keeps neither digest', async () => {
    // Prepare
    const claimed = randomBlob(10_000);
    const sent = randomBlob(10_000);
    const start = await api('/v2/team/reference/blobs/uploads/', { method: 'POST' });
    const url = new URL(at(start.headers.get('location')));
    url.searchParams.set('digest', claimed.digest);

    // Act
    const put = await fetch(url, { method: 'PUT', body: body(sent.bytes), headers: { 'content-type': 'application/octet-stream' } });

    // Assess
    expect(put.status).toBe(400);
    expect(await errorCode(put)).toBe('DIGEST_INVALID');
    for (const digest of [claimed.digest, sent.digest]) {
      expect((await api(`/v2/team/reference/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
      expect((await api(`/v2/team/reference/blobs/${digest}`)).status).toBe(404);
    }
    await expectIntact(reference);
  });

  it('refuses a manifest that is not JSON with 400 MANIFEST_INVALID and creates no tag', async () => {
    // Prepare
    const broken = blobOf(Buffer.from('{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {'));

    // Act
    const put = await putManifest('team/reference', 'broken', broken);

    // Assess
    expect(put.status).toBe(400);
    expect(await errorCode(put)).toBe('MANIFEST_INVALID');
    const get = await api('/v2/team/reference/manifests/broken');
    expect(get.status).toBe(404);
    expect(await errorCode(get)).toBe('MANIFEST_UNKNOWN');
    await expectIntact(reference);
  });

  it('refuses a manifest naming a blob the repository lacks with 400 MANIFEST_BLOB_UNKNOWN', async () => {
    // Prepare
    const missing = randomBlob(1000);
    const manifest = imageManifest(reference.blobs[0]!, [missing]);

    // Act
    const put = await putManifest('team/reference', 'dangling', manifest);

    // Assess
    expect(put.status).toBe(400);
    expect(await errorCode(put)).toBe('MANIFEST_BLOB_UNKNOWN');
    expect((await api(`/v2/team/reference/manifests/${manifest.digest}`)).status).toBe(404);
    await expectIntact(reference);
  });

  it('refuses repository names outside the spec grammar with 400 NAME_INVALID', async () => {
    // Prepare
    const names = ['Team/App', 'team//app', 'team/app-', '-team/app', 'team/APP'];

    // Act
    const responses = await Promise.all(names.map((name) => api(`/v2/${name}/blobs/uploads/`, { method: 'POST' })));

    // Assess
    for (const [i, response] of responses.entries()) {
      expect(response.status, names[i]).toBe(400);
      expect(await errorCode(response), names[i]).toBe('NAME_INVALID');
    }
    await expectIntact(reference);
  });
});

describe('referrers', () => {
  it('stores an artifact with a subject (201, OCI-Subject) and lists it, filtered by artifactType', async () => {
    // Prepare
    const empty = blobOf(Buffer.from('{}'));
    expect(empty.digest).toBe('sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
    await pushBlob('team/reference', empty);
    const artifactType = 'application/vnd.example.sbom.v1+json';
    const artifact = blobOf(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          artifactType,
          config: { mediaType: EMPTY_JSON, digest: empty.digest, size: empty.size },
          layers: [{ mediaType: EMPTY_JSON, digest: empty.digest, size: empty.size }],
          subject: { mediaType: OCI_MANIFEST, digest: reference.manifest.digest, size: reference.manifest.size },
          annotations: { 'org.example.note': 'e2e' },
        }),
      ),
    );

    // Act
    const put = await putManifest('team/reference', artifact.digest, artifact);
    const all = await api(`/v2/team/reference/referrers/${reference.manifest.digest}`);
    const matching = await api(`/v2/team/reference/referrers/${reference.manifest.digest}?artifactType=${encodeURIComponent(artifactType)}`);
    const other = await api(`/v2/team/reference/referrers/${reference.manifest.digest}?artifactType=${encodeURIComponent('application/vnd.example.other')}`);
    const none = await api(`/v2/team/reference/referrers/${sha256('nothing refers to this')}`);

    // Assess
    expect(put.status, await put.clone().text()).toBe(201);
    expect(put.headers.get('oci-subject')).toBe(reference.manifest.digest);
    const expected = { mediaType: OCI_MANIFEST, digest: artifact.digest, size: artifact.size, artifactType, annotations: { 'org.example.note': 'e2e' } };
    for (const [response, manifests] of [
      [all, [expected]],
      [matching, [expected]],
      [other, []],
      [none, []],
    ] as const) {
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe(OCI_INDEX);
      expect(await response.json()).toEqual({ schemaVersion: 2, mediaType: OCI_INDEX, manifests });
    }
    expect(all.headers.get('oci-filters-applied')).toBeNull();
    expect(matching.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(other.headers.get('oci-filters-applied')).toBe('artifactType');
    await expectIntact(reference);
  });
});

describe('listings', () => {
  it('pages tags with n and last, linking to the next page with Link: <…>; rel="next"', async () => {
    // Prepare
    const image = await pushImage('team/tags', 't01');
    for (const tag of ['t02', 't03', 't04', 't05']) expect((await putManifest('team/tags', tag, image.manifest)).status).toBe(201);

    // Act
    const pages: Array<{ tags: string[]; link: string | null }> = [];
    let next: string | null = '/v2/team/tags/tags/list?n=2';
    while (next !== null && pages.length < 10) {
      const response = await api(next);
      expect(response.status).toBe(200);
      const link = response.headers.get('link');
      pages.push({ tags: ((await response.json()) as { tags: string[] }).tags, link });
      next = link === null ? null : /^<([^>]+)>;\s*rel="next"$/.exec(link)![1]!;
    }
    const afterT03 = (await (await api('/v2/team/tags/tags/list?last=t03')).json()) as { name: string; tags: string[] };

    // Assess
    expect(pages.map((page) => page.tags)).toEqual([['t01', 't02'], ['t03', 't04'], ['t05']]);
    expect(pages[0]!.link).toBe('</v2/team/tags/tags/list?n=2&last=t02>; rel="next"');
    expect(pages[2]!.link).toBeNull();
    expect(afterT03).toEqual({ name: 'team/tags', tags: ['t04', 't05'] });
  });

  it('lists repositories in _catalog, paged the same way', async () => {
    // Prepare
    await pushImage('team/catalog-a', '1');
    await pushImage('team/catalog-b', '1');

    // Act
    const full = (await (await api('/v2/_catalog')).json()) as { repositories: string[] };
    const firstPage = await api('/v2/_catalog?n=1');
    const secondPage = await api('/v2/_catalog?n=1&last=team/catalog-a');

    // Assess
    expect(full.repositories).toEqual(expect.arrayContaining(['team/catalog-a', 'team/catalog-b', 'team/reference']));
    expect(full.repositories).toEqual([...full.repositories].sort());
    expect(((await firstPage.json()) as { repositories: string[] }).repositories).toEqual([full.repositories[0]]);
    expect(firstPage.headers.get('link')).toBe(`</v2/_catalog?n=1&last=${encodeURIComponent(full.repositories[0]!)}>; rel="next"`);
    expect(((await secondPage.json()) as { repositories: string[] }).repositories).toEqual(['team/catalog-b']);
  });
});

describe('deletion and ranged reads', () => {
  it('deletes a manifest by tag (202, tag gone, digest kept) and then by digest (202, gone)', async () => {
    // Prepare
    const image = await pushImage('team/deletable', 'old');

    // Act
    const byTag = await api('/v2/team/deletable/manifests/old', { method: 'DELETE' });
    const tagAfter = await api('/v2/team/deletable/manifests/old');
    const digestAfterTag = await api(`/v2/team/deletable/manifests/${image.manifest.digest}`);
    const tags = (await (await api('/v2/team/deletable/tags/list')).json()) as { tags: string[] };
    const byDigest = await api(`/v2/team/deletable/manifests/${image.manifest.digest}`, { method: 'DELETE' });
    const digestAfter = await api(`/v2/team/deletable/manifests/${image.manifest.digest}`);

    // Assess
    expect(byTag.status).toBe(202);
    expect(tagAfter.status).toBe(404);
    expect(await errorCode(tagAfter)).toBe('MANIFEST_UNKNOWN');
    expect(digestAfterTag.status).toBe(200);
    expect(Buffer.from(await digestAfterTag.arrayBuffer()).equals(image.manifest.bytes)).toBe(true);
    expect(tags.tags).not.toContain('old');
    expect(byDigest.status).toBe(202);
    expect(digestAfter.status).toBe(404);
    expect(await errorCode(digestAfter)).toBe('MANIFEST_UNKNOWN');
    await expectIntact(reference);
  });

  it('serves a byte range of a blob with 206 and Content-Range', async () => {
    // Prepare
    const layer = reference.blobs[1]!;

    // Act
    const response = await api(`/v2/team/reference/blobs/${layer.digest}`, { headers: { range: 'bytes=1000-1999' } });

    // Assess
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe(`bytes 1000-1999/${layer.size}`);
    expect(response.headers.get('content-length')).toBe('1000');
    expect(Buffer.from(await response.arrayBuffer()).equals(layer.bytes.subarray(1000, 2000))).toBe(true);
  });
});

describe('concurrency', () => {
  it('takes 6 parallel skopeo pushes of images sharing a layer, to 6 repositories, and all 6 pull back intact in parallel', async () => {
    // Prepare
    const layout = join(work, 'shared');
    const base = await buildRandomImage({ layout, tag: 'base', randomBytes: 8 * MiB });
    const images: LayoutImage[] = [];
    for (let i = 0; i < 6; i++) images.push(await addRandomLayer(layout, 'base', 256 * 1024, `app-${i}`));
    const shared = base.manifest.layers[0]!;
    for (const image of images) expect(image.manifest.layers[0]!.digest).toBe(shared.digest);

    // Act
    const results = await Promise.all(
      images.map((image, i) => runTool('skopeo', ['copy', '--dest-tls-verify=false', image.ref, `docker://${server.host}/team/concurrent-${i}:1`], { timeoutMs: 180_000 })),
    );

    // Assess
    for (const result of results) expect(result.code, describeFailure(result)).toBe(0);
    for (const [i, image] of images.entries()) {
      const manifest = await fetchManifest(server.url, `team/concurrent-${i}`, '1');
      expect(manifest.status).toBe(200);
      expect(manifest.bytes.equals(image.manifestBytes)).toBe(true);
      for (const blob of image.blobs) {
        expect(await fetchBlobDigest(server.url, `team/concurrent-${i}`, blob.digest), `${i}: ${blob.digest}`).toEqual({ status: 200, digest: blob.digest, size: blob.size });
      }
    }
    const pulls = await Promise.all(
      images.map((_, i) => runTool('skopeo', ['copy', '--src-tls-verify=false', `docker://${server.host}/team/concurrent-${i}:1`, `oci:${join(work, `pulled-${i}`)}:1`], { timeoutMs: 180_000 })),
    );
    for (const [i, pull] of pulls.entries()) {
      expect(pull.code, describeFailure(pull)).toBe(0);
      const pulled = await readLayoutImage(join(work, `pulled-${i}`), '1');
      expect(pulled.manifestDigest).toBe(images[i]!.manifestDigest);
      expect(await sameFileBytes(blobPath(layout, shared.digest), blobPath(pulled.layout, shared.digest))).toBe(true);
    }
  }, 180_000);
});

describe('crash mid-upload', () => {
  it('after kill -9 during a chunked upload and a restart on the same data dir, committed images are intact and no partial blob is visible', async () => {
    // Prepare
    const dataDir = join(work, 'crash-data');
    let crashing: RegistryServer | undefined = await startRegistryServer({ dataDir });
    let restarted: RegistryServer | undefined;
    try {
      const committed = await pushImageTo(crashing.url, 'team/survivor', 'v1');
      const big = randomBlob(24 * MiB);
      const start = await fetch(`${crashing.url}/v2/team/victim/blobs/uploads/`, { method: 'POST' });
      expect(start.status).toBe(202);
      const location = new URL(start.headers.get('location')!, crashing.url).toString();
      const firstChunk = 8 * MiB;
      const first = await fetch(location, {
        method: 'PATCH',
        body: body(big.bytes.subarray(0, firstChunk)),
        headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${firstChunk - 1}`, 'content-length': String(firstChunk) },
      });
      expect(first.status).toBe(202);

      // Act: the second chunk trickles in; the server dies with it half received.
      const inFlight = slowPatch(location, big.bytes.subarray(firstChunk, 2 * firstChunk), firstChunk);
      await inFlight.sent(3 * MiB);
      await crashing.kill();
      const outcome = await inFlight.done;
      crashing = undefined;
      restarted = await startRegistryServer({ dataDir });

      // Assess
      expect(outcome).toBe('connection lost');
      await expectIntact(committed, restarted.url);
      for (const digest of [big.digest, sha256(big.bytes.subarray(0, firstChunk)), sha256(big.bytes.subarray(0, firstChunk + 3 * MiB))]) {
        expect((await fetch(`${restarted.url}/v2/team/victim/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
        expect((await fetch(`${restarted.url}/v2/team/survivor/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
      }
      const catalog = (await (await fetch(`${restarted.url}/v2/_catalog`)).json()) as { repositories: string[] };
      expect(catalog.repositories).toEqual(['team/survivor']);
      const uploadUrl = new URL(new URL(location).pathname, restarted.url);
      const upload = await fetch(uploadUrl);
      let resumedAt: number | undefined;
      if (upload.status === 204) {
        // Resumable: the registry may keep what it had (never more than was sent) and the upload completes from there.
        const end = Number(upload.headers.get('range')!.split('-')[1]);
        expect(end).toBeLessThan(firstChunk + 3 * MiB);
        resumedAt = end + 1;
      } else {
        expect(upload.status).toBe(404);
        expect(await errorCode(upload)).toBe('BLOB_UPLOAD_UNKNOWN');
      }
      // Every committed blob file (<hex>.<uploadId>) holds exactly the bytes its name promises.
      const blobFiles = (await readdir(join(dataDir, 'blobs'), { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
      expect(blobFiles.length).toBeGreaterThanOrEqual(committed.blobs.length);
      for (const file of blobFiles) expect(await sha256File(join(file.parentPath, file.name))).toBe(`sha256:${file.name.split('.')[0]}`);
      console.log(JSON.stringify({ metric: 'crash_upload_after_restart', status: upload.status, range: upload.headers.get('range'), sentBeforeKill: firstChunk + 3 * MiB }));
      if (resumedAt !== undefined) {
        const rest = big.bytes.subarray(resumedAt);
        const patch = await fetch(uploadUrl, {
          method: 'PATCH',
          body: body(rest),
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${resumedAt}-${big.size - 1}`, 'content-length': String(rest.byteLength) },
        });
        expect(patch.status, await patch.clone().text()).toBe(202);
        const put = new URL(patch.headers.get('location')!, restarted.url);
        put.searchParams.set('digest', big.digest);
        expect((await fetch(put, { method: 'PUT' })).status).toBe(201);
      } else {
        await pushBlobTo(restarted.url, 'team/victim', big);
      }
      expect(await fetchBlobDigest(restarted.url, 'team/victim', big.digest)).toEqual({ status: 200, digest: big.digest, size: big.size });
      // And the restarted server still shuts down cleanly on SIGTERM.
      expect(await restarted.stop()).toBe('terminated');
      expect(restarted.child.exitCode).toBe(0);
      restarted = undefined;
    } finally {
      await crashing?.kill();
      await restarted?.stop();
    }
  }, 120_000);
});

async function pushBlobTo(baseUrl: string, name: string, blob: Blob): Promise<void> {
  const start = await fetch(`${baseUrl}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  const url = new URL(start.headers.get('location')!, baseUrl);
  url.searchParams.set('digest', blob.digest);
  const put = await fetch(url, { method: 'PUT', body: body(blob.bytes), headers: { 'content-type': 'application/octet-stream' } });
  expect(put.status, await put.clone().text()).toBe(201);
}

async function pushImageTo(baseUrl: string, name: string, tag: string): Promise<PushedImage> {
  const config = blobOf(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomUUID() })));
  const layer = randomBlob(512 * 1024);
  for (const blob of [config, layer]) await pushBlobTo(baseUrl, name, blob);
  const manifest = imageManifest(config, [layer]);
  const put = await fetch(`${baseUrl}/v2/${name}/manifests/${tag}`, { method: 'PUT', body: body(manifest.bytes), headers: { 'content-type': OCI_MANIFEST } });
  expect(put.status).toBe(201);
  return { name, tag, blobs: [config, layer], manifest };
}

/**
 * A PATCH whose body is written 256 KiB at a time, 20 ms apart, over node:http (so the test controls the pace).
 * `sent(n)` resolves once n bytes are written; `done` says how the request ended.
 */
function slowPatch(location: string, chunk: Buffer, offset: number): { sent(bytes: number): Promise<void>; done: Promise<'completed' | 'connection lost'> } {
  const waiters: Array<{ bytes: number; resolve: () => void }> = [];
  let written = 0;
  // Writing stops once a waiter is satisfied: on a loaded machine the rest would otherwise arrive before the kill.
  let held = false;
  const request = httpRequest(location, {
    method: 'PATCH',
    headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.byteLength - 1}`, 'content-length': String(chunk.byteLength) },
  });
  const done = new Promise<'completed' | 'connection lost'>((resolve) => {
    request.on('response', (response) => {
      response.resume();
      response.on('end', () => resolve('completed'));
    });
    request.on('error', () => resolve('connection lost'));
  });
  const timer = setInterval(() => {
    if (written >= chunk.byteLength || request.destroyed) {
      clearInterval(timer);
      return;
    }
    if (held) return;
    const piece = chunk.subarray(written, written + 256 * 1024);
    request.write(piece);
    written += piece.byteLength;
    for (const waiter of waiters.filter((candidate) => candidate.bytes <= written)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      held = true;
      waiter.resolve();
    }
  }, 20);
  void done.then(() => clearInterval(timer));
  return {
    sent: (bytes) => new Promise<void>((resolve) => (bytes <= written ? ((held = true), resolve()) : waiters.push({ bytes, resolve }))),
    done,
  };
}

import { describe, expect, it } from 'vitest';
import { createRegistryApp } from '../../lib/http/app.ts';
import { Registry } from '../../lib/registry/registry.ts';
import type { UploadSession } from '../../lib/registry/types.ts';
import { MemoryBlobStore } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';
import { call, memoryRegistry } from '../support/app-client.ts';
import { randomBlob } from '../support/builders.ts';

describe('blob uploads', () => {
  it('opens a session with 202, Location, Docker-Upload-UUID and Range', async () => {
    const { call } = memoryRegistry();
    const response = await call('POST', '/v2/team/app/blobs/uploads/');
    expect(response.status).toBe(202);
    expect(response.headers.location).toMatch(/^\/v2\/team\/app\/blobs\/uploads\/[0-9a-f-]{36}$/);
    expect(response.headers['docker-upload-uuid']).toBe(response.headers.location!.split('/').at(-1));
    expect(response.headers.range).toBe('0-0');
    expect(response.headers['oci-chunk-max-length']).toBeUndefined();
  });

  it('stores a monolithic POST ?digest= upload with 201', async () => {
    const { call } = memoryRegistry();
    const blob = randomBlob(5000);
    const response = await call('POST', `/v2/team/app/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes });
    expect(response.status).toBe(201);
    expect(response.headers.location).toBe(`/v2/team/app/blobs/${blob.digest}`);
    expect(response.headers['docker-content-digest']).toBe(blob.digest);
    const got = await call('GET', `/v2/team/app/blobs/${blob.digest}`);
    expect(got.body).toEqual(blob.bytes);
  });

  it('stores a POST then monolithic PUT with the whole body (containerd, buildkit)', async () => {
    const { call } = memoryRegistry();
    const blob = randomBlob(70_000);
    const started = await call('POST', '/v2/team/app/blobs/uploads/');
    const put = await call('PUT', `${started.headers.location}?digest=${blob.digest}`, { body: blob.bytes });
    expect(put.status).toBe(201);
    expect(put.headers['docker-content-digest']).toBe(blob.digest);
    expect((await call('GET', `/v2/team/app/blobs/${blob.digest}`)).body).toEqual(blob.bytes);
  });

  it('stores a streamed PATCH without Content-Length then an empty PUT (docker, skopeo)', async () => {
    const { call } = memoryRegistry();
    const blob = randomBlob(40_000);
    const started = await call('POST', '/v2/team/app/blobs/uploads/');
    const patched = await call('PATCH', started.headers.location!, { body: blob.bytes, chunked: true });
    expect(patched.status).toBe(202);
    expect(patched.headers.range).toBe(`0-${blob.size - 1}`);
    const put = await call('PUT', `${patched.headers.location}?digest=${blob.digest}`);
    expect(put.status).toBe(201);
    expect((await call('GET', `/v2/team/app/blobs/${blob.digest}`)).body).toEqual(blob.bytes);
  });

  it('accepts ordered chunks with Content-Range and a last chunk on the PUT', async () => {
    const { call } = memoryRegistry();
    const blob = randomBlob(30_000);
    let location = (await call('POST', '/v2/team/app/blobs/uploads/')).headers.location!;
    for (const [start, end] of [[0, 9_999], [10_000, 19_999]] as const) {
      const response = await call('PATCH', location, {
        body: blob.bytes.subarray(start, end + 1),
        headers: { 'content-range': `${start}-${end}`, 'content-type': 'application/octet-stream' },
      });
      expect(response.status).toBe(202);
      expect(response.headers.range).toBe(`0-${end}`);
      location = response.headers.location!;
    }
    const status = await call('GET', location);
    expect(status.status).toBe(204);
    expect(status.headers.range).toBe('0-19999');
    const put = await call('PUT', `${location}?digest=${blob.digest}`, { body: blob.bytes.subarray(20_000), headers: { 'content-range': '20000-29999' } });
    expect(put.status).toBe(201);
    expect((await call('GET', `/v2/team/app/blobs/${blob.digest}`)).body).toEqual(blob.bytes);
  });

  it('rejects an out-of-order chunk with 416 and reports where the upload stands', async () => {
    const { call } = memoryRegistry();
    const blob = randomBlob(2000);
    const location = (await call('POST', '/v2/team/app/blobs/uploads/')).headers.location!;
    await call('PATCH', location, { body: blob.bytes.subarray(0, 1000), headers: { 'content-range': '0-999' } });
    const skipped = await call('PATCH', location, { body: blob.bytes.subarray(1500), headers: { 'content-range': '1500-1999' } });
    expect(skipped.status).toBe(416);
    expect(skipped.json().errors[0].code).toBe('RANGE_INVALID');
    expect(skipped.headers.range).toBe('0-999');
    expect(skipped.headers.location).toBe(location);
    const repeated = await call('PATCH', location, { body: blob.bytes.subarray(0, 1000), headers: { 'content-range': '0-999' } });
    expect(repeated.status).toBe(416);
    const status = await call('GET', location);
    expect(status.status).toBe(204);
    expect(status.headers.range).toBe('0-999');
    // The upload is still good: resume from the reported offset.
    await call('PATCH', location, { body: blob.bytes.subarray(1000), headers: { 'content-range': '1000-1999' } });
    expect((await call('PUT', `${location}?digest=${blob.digest}`)).status).toBe(201);
  });

  it('rejects a malformed Content-Range with 416 and the upload position, and keeps the upload', async () => {
    const { call } = memoryRegistry();
    const blob = randomBlob(1500);
    const location = (await call('POST', '/v2/team/app/blobs/uploads/')).headers.location!;
    await call('PATCH', location, { body: blob.bytes.subarray(0, 1000), headers: { 'content-range': '0-999' } });
    const response = await call('PATCH', location, { body: blob.bytes.subarray(1000), headers: { 'content-range': 'bytes=1000-' } });
    expect(response.status).toBe(416);
    expect(response.json().errors[0]).toMatchObject({ code: 'RANGE_INVALID', detail: { contentRange: 'bytes=1000-' } });
    expect(response.headers.range).toBe('0-999');
    expect(response.headers.location).toBe(location);
    expect(response.headers['docker-upload-uuid']).toBe(location.split('/').at(-1));
    expect(Number(response.headers['content-length'])).toBe(response.body.byteLength);
    await call('PATCH', location, { body: blob.bytes.subarray(1000), headers: { 'content-range': '1000-1499' } });
    expect((await call('PUT', `${location}?digest=${blob.digest}`)).status).toBe(201);
  });

  it('answers the loser of two concurrent PATCHes with 416 and the position the winner left', async () => {
    // Prepare: while the loser's PATCH records its chunk, another writer records 700 bytes first (its compare-and-set wins).
    let raceOnce = true;
    class RacingMetadataStore extends MemoryMetadataStore {
      override async updateUpload(next: UploadSession): Promise<void> {
        if (raceOnce) {
          raceOnce = false;
          await super.updateUpload({ ...next, offset: 700 });
        }
        return super.updateUpload(next);
      }
    }
    const app = createRegistryApp({ registry: new Registry({ blobs: new MemoryBlobStore(), metadata: new RacingMetadataStore() }) });
    const location = (await call(app, 'POST', '/v2/team/app/blobs/uploads/')).headers.location!;
    // Act
    const loser = await call(app, 'PATCH', location, { body: randomBlob(300).bytes, headers: { 'content-range': '0-299' } });
    // Assess
    expect(loser.status).toBe(416);
    expect(loser.json().errors[0].code).toBe('RANGE_INVALID');
    expect(loser.headers.range).toBe('0-699');
    expect(loser.headers.location).toBe(location);
    expect((await call(app, 'GET', location)).headers.range).toBe('0-699');
  });

  it('rejects a Content-Range whose length disagrees with Content-Length', async () => {
    const { call } = memoryRegistry();
    const location = (await call('POST', '/v2/team/app/blobs/uploads/')).headers.location!;
    const response = await call('PATCH', location, { body: Buffer.alloc(10), headers: { 'content-range': '0-19' } });
    expect(response.status).toBe(416);
    expect((await call('GET', location)).headers.range).toBe('0-0');
  });

  it('refuses a wrong digest with DIGEST_INVALID and stores nothing', async () => {
    const { call, blobs } = memoryRegistry();
    const blob = randomBlob(1000);
    const other = randomBlob(10);
    const location = (await call('POST', '/v2/team/app/blobs/uploads/')).headers.location!;
    await call('PATCH', location, { body: blob.bytes });
    const put = await call('PUT', `${location}?digest=${other.digest}`);
    expect(put.status).toBe(400);
    expect(put.json().errors[0].code).toBe('DIGEST_INVALID');
    expect((await call('HEAD', `/v2/team/app/blobs/${other.digest}`)).status).toBe(404);
    expect((await call('HEAD', `/v2/team/app/blobs/${blob.digest}`)).status).toBe(404);
    expect((await call('GET', location)).status).toBe(404);
    expect(blobs.openUploads).toBe(0);
  });

  it('refuses a monolithic upload with the wrong digest and stores nothing', async () => {
    const { call, blobs } = memoryRegistry();
    const blob = randomBlob(1000);
    const other = randomBlob(1000);
    const response = await call('POST', `/v2/team/app/blobs/uploads/?digest=${other.digest}`, { body: blob.bytes });
    expect(response.status).toBe(400);
    expect(response.json().errors[0].code).toBe('DIGEST_INVALID');
    expect((await call('HEAD', `/v2/team/app/blobs/${other.digest}`)).status).toBe(404);
    expect(blobs.openUploads).toBe(0);
  });

  it('requires the digest parameter to complete an upload', async () => {
    const { call } = memoryRegistry();
    const location = (await call('POST', '/v2/team/app/blobs/uploads/')).headers.location!;
    const response = await call('PUT', location);
    expect(response.status).toBe(400);
    expect(response.json().errors[0].code).toBe('DIGEST_INVALID');
  });

  it('answers 404 BLOB_UPLOAD_UNKNOWN for an unknown upload, on every method', async () => {
    const { call } = memoryRegistry();
    const location = '/v2/team/app/blobs/uploads/00000000-0000-4000-8000-000000000000';
    for (const method of ['GET', 'PATCH', 'PUT', 'DELETE']) {
      const response = await call(method, method === 'PUT' ? `${location}?digest=sha256:${'a'.repeat(64)}` : location);
      expect(response.status, method).toBe(404);
      expect(response.json().errors[0].code).toBe('BLOB_UPLOAD_UNKNOWN');
    }
  });

  it('does not let another repository continue an upload', async () => {
    const { call } = memoryRegistry();
    const location = (await call('POST', '/v2/team/app/blobs/uploads/')).headers.location!;
    const stolen = location.replace('/team/app/', '/team/other/');
    expect((await call('PATCH', stolen, { body: Buffer.alloc(5) })).status).toBe(404);
  });

  it('cancels an upload with DELETE (204), after which it is unknown', async () => {
    const { call, blobs } = memoryRegistry();
    const location = (await call('POST', '/v2/team/app/blobs/uploads/')).headers.location!;
    await call('PATCH', location, { body: Buffer.alloc(100) });
    expect((await call('DELETE', location)).status).toBe(204);
    expect((await call('GET', location)).status).toBe(404);
    expect(blobs.openUploads).toBe(0);
  });

  it('mounts a blob from another repository with 201', async () => {
    const { call } = memoryRegistry();
    const blob = randomBlob();
    await call('POST', `/v2/team/base/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes });
    expect((await call('HEAD', `/v2/team/app/blobs/${blob.digest}`)).status).toBe(404);
    const mounted = await call('POST', `/v2/team/app/blobs/uploads/?mount=${blob.digest}&from=team/base`);
    expect(mounted.status).toBe(201);
    expect(mounted.headers.location).toBe(`/v2/team/app/blobs/${blob.digest}`);
    expect((await call('GET', `/v2/team/app/blobs/${blob.digest}`)).body).toEqual(blob.bytes);
  });

  it('falls back to an upload session (202) when the mount source lacks the blob', async () => {
    const { call } = memoryRegistry();
    const blob = randomBlob();
    const response = await call('POST', `/v2/team/app/blobs/uploads/?mount=${blob.digest}&from=team/base`);
    expect(response.status).toBe(202);
    expect(response.headers.location).toMatch(/\/blobs\/uploads\//);
  });

  it('mounts without from when the registry already stores the blob (automatic mount)', async () => {
    const { call } = memoryRegistry();
    const blob = randomBlob();
    await call('POST', `/v2/team/base/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes });
    const response = await call('POST', `/v2/other/app/blobs/uploads/?mount=${blob.digest}`);
    expect(response.status).toBe(201);
    expect((await call('HEAD', `/v2/other/app/blobs/${blob.digest}`)).status).toBe(200);
  });

  describe('with a per-request body limit (the serverless path)', () => {
    it('advertises OCI-Chunk-Max-Length on POST', async () => {
      const { call } = memoryRegistry({ maxChunkLength: 4096 });
      const response = await call('POST', '/v2/team/app/blobs/uploads/');
      expect(response.headers['oci-chunk-max-length']).toBe('4096');
    });

    it('refuses a larger PATCH with 413 and an explanation, and the upload stays usable', async () => {
      const { call } = memoryRegistry({ maxChunkLength: 4096 });
      const blob = randomBlob(6000);
      const location = (await call('POST', '/v2/team/app/blobs/uploads/')).headers.location!;
      const tooBig = await call('PATCH', location, { body: blob.bytes });
      expect(tooBig.status).toBe(413);
      const error = tooBig.json().errors[0];
      expect(error.code).toBe('PAYLOAD_TOO_LARGE');
      expect(error.message).toMatch(/chunked uploads/);
      expect(error.message).toMatch(/ocireg push/);
      expect((await call('GET', location)).headers.range).toBe('0-0');
      await call('PATCH', location, { body: blob.bytes.subarray(0, 4096), headers: { 'content-range': '0-4095' } });
      await call('PATCH', location, { body: blob.bytes.subarray(4096), headers: { 'content-range': '4096-5999' } });
      expect((await call('PUT', `${location}?digest=${blob.digest}`)).status).toBe(201);
    });

    it('refuses an oversized streamed PATCH (no Content-Length) while it streams', async () => {
      const { call } = memoryRegistry({ maxChunkLength: 4096 });
      const location = (await call('POST', '/v2/team/app/blobs/uploads/')).headers.location!;
      const response = await call('PATCH', location, { body: randomBlob(5000).bytes, chunked: true });
      expect(response.status).toBe(413);
      expect((await call('GET', location)).headers.range).toBe('0-0');
    });

    it('refuses an oversized monolithic upload and keeps nothing', async () => {
      const { call, blobs } = memoryRegistry({ maxChunkLength: 4096 });
      const blob = randomBlob(5000);
      const response = await call('POST', `/v2/team/app/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes });
      expect(response.status).toBe(413);
      expect((await call('HEAD', `/v2/team/app/blobs/${blob.digest}`)).status).toBe(404);
      expect(blobs.openUploads).toBe(0);
    });
  });
});

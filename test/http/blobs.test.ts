import { describe, expect, it } from 'vitest';
import { memoryRegistry } from '../support/app-client.ts';
import { randomBlob } from '../support/builders.ts';

async function withBlob(size = 1000) {
  const registry = memoryRegistry();
  const blob = randomBlob(size);
  await registry.call('POST', `/v2/team/app/blobs/uploads/?digest=${blob.digest}`, { body: blob.bytes });
  return { ...registry, blob };
}

describe('blobs', () => {
  it('serves GET with length, digest and the bytes', async () => {
    const { call, blob } = await withBlob();
    const response = await call('GET', `/v2/team/app/blobs/${blob.digest}`);
    expect(response.status).toBe(200);
    expect(response.headers['content-length']).toBe(String(blob.size));
    expect(response.headers['docker-content-digest']).toBe(blob.digest);
    expect(response.body).toEqual(blob.bytes);
  });

  it('answers HEAD with the length and no body', async () => {
    const { call, blob } = await withBlob();
    const response = await call('HEAD', `/v2/team/app/blobs/${blob.digest}`);
    expect(response.status).toBe(200);
    expect(response.headers['content-length']).toBe(String(blob.size));
    expect(response.body.byteLength).toBe(0);
  });

  it.each([
    ['bytes=100-199', 100, 199],
    ['bytes=900-', 900, 999],
    ['bytes=-10', 990, 999],
    ['bytes=990-5000', 990, 999],
  ])('serves Range %s with 206 and Content-Range', async (range, start, end) => {
    const { call, blob } = await withBlob(1000);
    const response = await call('GET', `/v2/team/app/blobs/${blob.digest}`, { headers: { range } });
    expect(response.status).toBe(206);
    expect(response.headers['content-range']).toBe(`bytes ${start}-${end}/1000`);
    expect(response.body).toEqual(blob.bytes.subarray(start, end + 1));
  });

  it('answers an unsatisfiable Range with 416', async () => {
    const { call, blob } = await withBlob(1000);
    const response = await call('GET', `/v2/team/app/blobs/${blob.digest}`, { headers: { range: 'bytes=1000-1001' } });
    expect(response.status).toBe(416);
  });

  it('answers 404 BLOB_UNKNOWN for a blob of another repository', async () => {
    const { call, blob } = await withBlob();
    const response = await call('GET', `/v2/team/other/blobs/${blob.digest}`);
    expect(response.status).toBe(404);
    expect(response.json().errors[0].code).toBe('BLOB_UNKNOWN');
  });

  it('answers 400 DIGEST_INVALID for a malformed digest', async () => {
    const { call } = memoryRegistry();
    const response = await call('GET', '/v2/team/app/blobs/sha256:nothex');
    expect(response.status).toBe(400);
    expect(response.json().errors[0].code).toBe('DIGEST_INVALID');
  });

  it('deletes a blob from the repository with 202 (other repositories keep it)', async () => {
    const { call, blob } = await withBlob();
    await call('POST', `/v2/team/copy/blobs/uploads/?mount=${blob.digest}&from=team/app`);
    expect((await call('DELETE', `/v2/team/app/blobs/${blob.digest}`)).status).toBe(202);
    expect((await call('HEAD', `/v2/team/app/blobs/${blob.digest}`)).status).toBe(404);
    expect((await call('GET', `/v2/team/copy/blobs/${blob.digest}`)).body).toEqual(blob.bytes);
    expect((await call('DELETE', `/v2/team/app/blobs/${blob.digest}`)).status).toBe(404);
  });

  it('redirects with 307 when the store answers with a URL', async () => {
    const { call, blob, blobs } = await withBlob();
    blobs.read = async () => ({ kind: 'redirect', url: 'https://bucket.example/presigned?X-Amz-Signature=abc' });
    const response = await call('GET', `/v2/team/app/blobs/${blob.digest}`);
    expect(response.status).toBe(307);
    expect(response.headers.location).toBe('https://bucket.example/presigned?X-Amz-Signature=abc');
    expect(response.headers['docker-content-digest']).toBe(blob.digest);
  });
});

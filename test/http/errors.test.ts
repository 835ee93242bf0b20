import { describe, expect, it } from 'vitest';
import { memoryRegistry } from '../support/app-client.ts';
import { randomBlob } from '../support/builders.ts';

describe('base endpoint and errors', () => {
  it('answers GET /v2/ with 200 and the API version header', async () => {
    const { call } = memoryRegistry();
    const response = await call('GET', '/v2/');
    expect(response.status).toBe(200);
    expect(response.headers['docker-distribution-api-version']).toBe('registry/2.0');
  });

  it.each(['Team/App', 'team//app', 'team/app-', '-team', 'a'.repeat(256), 'team/_app'])('refuses the repository name %s with NAME_INVALID', async (name) => {
    const { call } = memoryRegistry();
    const response = await call('GET', `/v2/${name}/tags/list`);
    expect(response.status).toBe(400);
    expect(response.json().errors[0].code).toBe('NAME_INVALID');
  });

  it.each(['a', 'team/app', 'a.b_c__d--e/f-g', 'registry.example.com/x'])('accepts the repository name %s', async (name) => {
    const { call } = memoryRegistry();
    expect((await call('POST', `/v2/${name}/blobs/uploads/`)).status).toBe(202);
  });

  it('answers an unsupported method with 405 UNSUPPORTED', async () => {
    const { call } = memoryRegistry();
    const response = await call('POST', '/v2/team/app/tags/list');
    expect(response.status).toBe(405);
    expect(response.json().errors[0].code).toBe('UNSUPPORTED');
  });

  it.each([
    ['PATCH', '/v2/'],
    ['DELETE', '/v2/_catalog'],
    ['PATCH', '/v2/team/app/manifests/latest'],
    ['PUT', `/v2/team/app/blobs/${randomBlob().digest}`],
    ['GET', '/v2/team/app/blobs/uploads/'],
    ['POST', '/v2/team/app/blobs/uploads/some-id'],
    ['DELETE', `/v2/team/app/referrers/${randomBlob().digest}`],
    ['OPTIONS', '/v2/team/app/tags/list'],
  ])('answers %s %s (a method outside the resource table) with 405 UNSUPPORTED naming the method', async (method, path) => {
    const { call } = memoryRegistry();
    const response = await call(method, path);
    expect(response.status).toBe(405);
    expect(response.json().errors[0]).toMatchObject({ code: 'UNSUPPORTED', detail: { method } });
  });

  it('answers HEAD with the headers of GET and no body, errors included', async () => {
    const { call } = memoryRegistry();
    const get = await call('GET', '/v2/');
    const head = await call('HEAD', '/v2/');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(get.headers['content-length']);
    expect(head.body.byteLength).toBe(0);
    const missing = await call('HEAD', '/v2/team/app/manifests/latest');
    expect(missing.status).toBe(404);
    expect(missing.body.byteLength).toBe(0);
  });

  it('answers an unknown path with 404 and a JSON error', async () => {
    const { call } = memoryRegistry();
    const response = await call('GET', '/v3/whatever');
    expect(response.status).toBe(404);
    expect(response.json().errors).toEqual([{ code: 'UNSUPPORTED', message: 'no such endpoint', detail: { path: '/v3/whatever' } }]);
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(Number(response.headers['content-length'])).toBe(response.body.byteLength);
  });

  it('turns an unexpected failure into a 500 OCI error, logs the cause and does not leak it', async () => {
    const { call, metadata, logs } = memoryRegistry();
    metadata.getLinkedBlob = async () => {
      throw new Error('disk on fire at /secret/path');
    };
    const response = await call('GET', `/v2/team/app/blobs/${randomBlob().digest}`);
    expect(response.status).toBe(500);
    expect(response.json().errors[0]).toEqual({ code: 'UNKNOWN', message: 'internal server error', detail: null });
    expect(response.body.toString()).not.toMatch(/secret/);
    const logged = logs.at(-1)!;
    expect(logged.line.status).toBe(500);
    expect((logged.cause as Error).message).toMatch(/disk on fire/);
  });

  it('logs one line per request with operation and repository', async () => {
    const { call, logs } = memoryRegistry();
    await call('GET', '/v2/team/app/manifests/latest');
    expect(logs).toHaveLength(1);
    expect(logs[0]!.line).toMatchObject({ method: 'GET', status: 404, operation: 'manifest.get', name: 'team/app', error: { code: 'MANIFEST_UNKNOWN' } });
  });
});

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

  it('answers an unknown path with 404 and a JSON error', async () => {
    const { call } = memoryRegistry();
    const response = await call('GET', '/v3/whatever');
    expect(response.status).toBe(404);
    expect(response.json().errors).toHaveLength(1);
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

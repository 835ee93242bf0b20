import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevAws, type DevAws } from '../../bin/dev-aws.ts';
import { startEmulatedApiGateway, type GatewayLogLine } from '../../lib/server/emulated-api-gateway.ts';
import { imageManifest, randomBlob } from '../support/builders.ts';
import { sha256 } from '../support/digests.ts';

const MAX_CHUNK_LENGTH = 1024 * 1024;

/** A Buffer as a fetch body (the DOM typings want a plain Uint8Array). */
const bytes = (buffer: Buffer) => new Uint8Array(buffer);

/** Through the emulated HTTP API and the production handler, over DynamoDB Local and s3rver. */
describe('dev:aws (emulated API Gateway + Lambda handler + DynamoDB Local + s3rver)', () => {
  let dev: DevAws;
  const gatewayLog: GatewayLogLine[] = [];

  beforeAll(async () => {
    dev = await startDevAws({ maxChunkLength: MAX_CHUNK_LENGTH, logLevel: 'WARN', accessLog: (line) => gatewayLog.push(line) });
  });
  afterAll(async () => {
    await dev?.stop();
  });

  const at = (path: string) => new URL(path, dev.url).toString();

  async function uploadObjects(): Promise<number> {
    const listed = await dev.local.s3.send(new ListObjectsV2Command({ Bucket: dev.names.bucket, Prefix: 'uploads/' }));
    return listed.KeyCount ?? 0;
  }

  it('pushes an image with POST, PATCH, PUT and a manifest PUT, then pulls it: blobs redirect to s3rver and come back identical', async () => {
    const config = randomBlob(512);
    const layer = randomBlob(300_000);
    const manifest = imageManifest(config, [layer]);

    // Chunked push of the config (containers/image style), monolithic POST of the layer (oras style).
    const started = await fetch(at('/v2/dev/app/blobs/uploads/'), { method: 'POST' });
    const uploadUrl = at(started.headers.get('location')!);
    const patched = await fetch(uploadUrl, { method: 'PATCH', body: bytes(config.bytes), headers: { 'content-type': 'application/octet-stream' } });
    const completed = await fetch(`${at(patched.headers.get('location')!)}?digest=${config.digest}`, { method: 'PUT' });
    const monolithic = await fetch(at(`/v2/dev/app/blobs/uploads/?digest=${layer.digest}`), { method: 'POST', body: bytes(layer.bytes), headers: { 'content-type': 'application/octet-stream' } });
    const pushed = await fetch(at('/v2/dev/app/manifests/1.0'), { method: 'PUT', body: bytes(manifest.bytes), headers: { 'content-type': manifest.mediaType } });

    expect(started.status).toBe(202);
    expect(started.headers.get('oci-chunk-max-length')).toBe(String(MAX_CHUNK_LENGTH));
    expect(started.headers.get('apigw-requestid')).toBeTruthy();
    expect(patched.status).toBe(202);
    expect(patched.headers.get('range')).toBe(`0-${config.size - 1}`);
    expect(completed.status).toBe(201);
    expect(monolithic.status).toBe(201);
    expect(pushed.status).toBe(201);
    expect(pushed.headers.get('docker-content-digest')).toBe(manifest.digest);

    const pulledManifest = await fetch(at('/v2/dev/app/manifests/1.0'), { headers: { accept: manifest.mediaType } });
    expect(pulledManifest.status).toBe(200);
    expect(Buffer.from(await pulledManifest.arrayBuffer()).equals(manifest.bytes)).toBe(true);

    for (const blob of [config, layer]) {
      const redirect = await fetch(at(`/v2/dev/app/blobs/${blob.digest}`), { redirect: 'manual' });
      const location = new URL(redirect.headers.get('location')!);
      const fromS3 = await fetch(location);

      expect(redirect.status).toBe(307);
      expect(location.hostname).toBe('localhost');
      expect(location.port).toBe(new URL(dev.endpoints.s3).port);
      expect(location.searchParams.get('X-Amz-Signature')).toBeTruthy();
      expect(fromS3.status).toBe(200);
      expect(Buffer.from(await fromS3.arrayBuffer()).equals(blob.bytes)).toBe(true);
    }
  });

  it('stores bodies the gateway passed as text byte for byte (a manifest PUT as application/json), and refuses text bytes it could not pass', async () => {
    const config = randomBlob(64);
    const layer = Buffer.from('plain text layer: naïve café 🐳\n');
    const layerDigest = sha256(layer);
    const notUtf8 = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]);
    const notUtf8Digest = sha256(notUtf8);
    const manifest = imageManifest(config, [{ ...config, digest: layerDigest, size: layer.byteLength, bytes: layer }], { annotations: { note: 'déjà vu' } });

    const configPut = await fetch(at(`/v2/dev/text/blobs/uploads/?digest=${config.digest}`), { method: 'POST', body: bytes(config.bytes), headers: { 'content-type': 'application/octet-stream' } });
    const textPut = await fetch(at(`/v2/dev/text/blobs/uploads/?digest=${layerDigest}`), { method: 'POST', body: bytes(layer), headers: { 'content-type': 'text/plain' } });
    const refused = await fetch(at(`/v2/dev/text/blobs/uploads/?digest=${notUtf8Digest}`), { method: 'POST', body: bytes(notUtf8), headers: { 'content-type': 'text/plain' } });
    const pushed = await fetch(at('/v2/dev/text/manifests/1.0'), { method: 'PUT', body: bytes(manifest.bytes), headers: { 'content-type': 'application/json' } });
    const pulled = await fetch(at('/v2/dev/text/manifests/1.0'), { headers: { accept: manifest.mediaType } });
    const absent = await fetch(at(`/v2/dev/text/blobs/${notUtf8Digest}`), { method: 'HEAD' });

    expect(configPut.status).toBe(201);
    expect(textPut.status).toBe(201);
    expect(refused.status).toBe(400);
    expect((await refused.json()).errors[0].code).toBe('DIGEST_INVALID');
    expect(pushed.status).toBe(201);
    expect(pushed.headers.get('docker-content-digest')).toBe(manifest.digest);
    expect(Buffer.from(await pulled.arrayBuffer()).equals(manifest.bytes)).toBe(true);
    expect(absent.status).toBe(404);
  });

  it('refuses a PATCH over the maximum chunk length with the registry 413, and keeps nothing of it', async () => {
    const started = await fetch(at('/v2/dev/big/blobs/uploads/'), { method: 'POST' });
    const uploadUrl = at(started.headers.get('location')!);
    const before = await uploadObjects();

    const refused = await fetch(uploadUrl, { method: 'PATCH', body: bytes(randomBlob(MAX_CHUNK_LENGTH + 1).bytes), headers: { 'content-type': 'application/octet-stream' } });
    const body = await refused.json();
    const afterRefused = await uploadObjects();
    const next = await fetch(uploadUrl, { method: 'PATCH', body: bytes(randomBlob(10).bytes), headers: { 'content-range': '0-9', 'content-type': 'application/octet-stream' } });

    expect(refused.status).toBe(413);
    expect(body.errors[0].code).toBe('PAYLOAD_TOO_LARGE');
    expect(afterRefused).toBe(before);
    expect(next.status).toBe(202);
    expect(next.headers.get('range')).toBe('0-9');
  });

  it('answers a request body over 10 MiB itself with 413, without invoking the function', async () => {
    const started = await fetch(at('/v2/dev/huge/blobs/uploads/'), { method: 'POST' });
    const uploadUrl = at(started.headers.get('location')!);

    const refused = await fetch(uploadUrl, { method: 'PATCH', body: new Uint8Array(10 * 1024 * 1024 + 1), headers: { 'content-type': 'application/octet-stream' } });

    expect(refused.status).toBe(413);
    expect(await refused.json()).toEqual({ message: 'Request Entity Too Large' });
    expect(gatewayLog.at(-1)).toMatchObject({ method: 'PATCH', status: 413, gatewayError: 'REQUEST_TOO_LARGE' });
  });

  it('answers a body under 10 MiB whose base64 event exceeds 6 MB with the gateway 413, not the registry one', async () => {
    const started = await fetch(at('/v2/dev/event/blobs/uploads/'), { method: 'POST' });
    const uploadUrl = at(started.headers.get('location')!);

    // 4.8 MB of body is 6.4 MB of base64: over the Lambda payload limit, under the HTTP API's.
    const refused = await fetch(uploadUrl, { method: 'PATCH', body: new Uint8Array(4_800_000), headers: { 'content-type': 'application/octet-stream' } });

    expect(refused.status).toBe(413);
    expect(await refused.json()).toEqual({ message: 'Request Entity Too Large' });
    expect(gatewayLog.at(-1)).toMatchObject({ status: 413, gatewayError: 'EVENT_TOO_LARGE' });
  });
});

describe('emulated API Gateway limits', () => {
  it('answers 503 Service Unavailable when the function outlives the integration timeout', async () => {
    const gateway = await startEmulatedApiGateway({
      handler: () => new Promise((resolve) => setTimeout(() => resolve({ statusCode: 200 }), 1_000)),
      integrationTimeoutMs: 100,
    });
    try {
      const response = await fetch(`${gateway.url}/v2/`);

      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({ message: 'Service Unavailable' });
    } finally {
      await gateway.close();
    }
  });

  it('answers 500 Internal Server Error for a function error, and passes a function result through', async () => {
    const gateway = await startEmulatedApiGateway({
      handler: async (event) => {
        if (event.rawPath === '/v2/fail') throw new Error('boom');
        return { statusCode: 200, headers: { 'x-seen': `${event.routeKey} ${event.pathParameters?.proxy ?? ''} ${event.cookies?.join('|') ?? ''}` }, body: Buffer.from(event.body ?? '', 'base64').toString(), isBase64Encoded: false };
      },
    });
    try {
      const failed = await fetch(`${gateway.url}/v2/fail`);
      const echoed = await fetch(`${gateway.url}/v2/team/app/blobs/uploads/`, { method: 'POST', body: 'hello', headers: { cookie: 'a=1; b=2', 'content-type': 'application/octet-stream' } });

      expect(failed.status).toBe(500);
      expect(await failed.json()).toEqual({ message: 'Internal Server Error' });
      expect(echoed.status).toBe(200);
      expect(echoed.headers.get('x-seen')).toBe('ANY /v2/{proxy+} team/app/blobs/uploads/ a=1|b=2');
      expect(await echoed.text()).toBe('hello');
    } finally {
      await gateway.close();
    }
  });
});

describe('emulated API Gateway events (payload format 2.0)', () => {
  type Seen = { rawPath: string; proxy?: string; routeKey: string; isBase64Encoded: boolean; body?: string };
  let gateway: Awaited<ReturnType<typeof startEmulatedApiGateway>>;
  const seen: Seen[] = [];

  beforeAll(async () => {
    gateway = await startEmulatedApiGateway({
      handler: async (event) => {
        const entry: Seen = { rawPath: event.rawPath, routeKey: event.routeKey, isBase64Encoded: event.isBase64Encoded };
        if (event.pathParameters?.proxy !== undefined) entry.proxy = event.pathParameters.proxy;
        if (event.body !== undefined) entry.body = event.body;
        seen.push(entry);
        return { statusCode: 204 };
      },
    });
  });
  afterAll(async () => {
    await gateway?.close();
  });

  async function send(path: string, init: RequestInit = {}): Promise<Seen> {
    const response = await fetch(`${gateway.url}${path}`, init);
    expect(response.status).toBe(204);
    return seen.at(-1)!;
  }

  it.each([
    ['text/plain; charset=utf-8'],
    ['application/json'],
    ['application/xml'],
    ['application/javascript'],
    ['TEXT/HTML'],
  ])('passes a %s body as a UTF-8 string', async (contentType) => {
    const event = await send('/v2/a/b/blobs/uploads/', { method: 'POST', body: 'héllo {"a":1}', headers: { 'content-type': contentType } });

    expect(event).toMatchObject({ isBase64Encoded: false, body: 'héllo {"a":1}' });
  });

  it.each([
    ['application/octet-stream'],
    ['application/vnd.oci.image.manifest.v1+json'],
    ['application/vnd.docker.distribution.manifest.v2+json'],
    ['application/x-www-form-urlencoded'],
    [undefined],
  ])('passes a %s body base64-encoded', async (contentType) => {
    const body = new Uint8Array([0xff, 0x00, 0x61]);
    const event = await send('/v2/a/b/blobs/uploads/', { method: 'POST', body, headers: contentType === undefined ? {} : { 'content-type': contentType } });

    expect(event.isBase64Encoded).toBe(true);
    expect(Buffer.from(event.body!, 'base64')).toEqual(Buffer.from(body));
  });

  it('delivers rawPath and the proxy parameter percent-decoded, and a path that is not valid percent-encoding as sent', async () => {
    const decoded = await send('/v2/team/ap%70/tags/list?n=1%2C2');
    const invalid = await send('/v2/team/%zz/tags/list');

    expect(decoded).toMatchObject({ rawPath: '/v2/team/app/tags/list', proxy: 'team/app/tags/list', routeKey: 'ANY /v2/{proxy+}' });
    expect(invalid.rawPath).toBe('/v2/team/%zz/tags/list');
  });

  it('routes /v2 and /token exactly, and anything else to $default', async () => {
    const routes = [await send('/v2'), await send('/token'), await send('/v2/'), await send('/metrics')].map((event) => event.routeKey);

    expect(routes).toEqual(['ANY /v2', 'ANY /token', '$default', '$default']);
  });

  it('answers a path no route matches with its own 404 {"message":"Not Found"}, without invoking the function', async () => {
    const invoked: string[] = [];
    const narrow = await startEmulatedApiGateway({
      handler: async (event) => {
        invoked.push(event.rawPath);
        return { statusCode: 204 };
      },
      routeKeys: ['ANY /v2/{proxy+}'],
    });
    try {
      const missed = await fetch(`${narrow.url}/token`);
      const matched = await fetch(`${narrow.url}/v2/a/tags/list`);

      expect(missed.status).toBe(404);
      expect(await missed.json()).toEqual({ message: 'Not Found' });
      expect(matched.status).toBe(204);
      expect(invoked).toEqual(['/v2/a/tags/list']);
    } finally {
      await narrow.close();
    }
  });
});

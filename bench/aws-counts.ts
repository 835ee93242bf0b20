import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { startDevAws } from '../bin/dev-aws.ts';
import { newTokenSecret } from '../lib/auth/access-token-secret.ts';
import { digestOf } from '../lib/registry/digest.ts';
import { DynamoDbIdentityStore } from '../lib/storage/dynamodb/dynamodb-identity-store.ts';

/**
 * Deterministic counts of the AWS path: every request type sent, one at a time, through the emulated HTTP API to the
 * production handler over DynamoDB Local and s3rver (`startDevAws`), with a middleware on both SDK clients that
 * counts each command and asks DynamoDB for the capacity it consumed (`ReturnConsumedCapacity: TOTAL`). Counts per
 * request are the difference of the counters around it. Presigned URLs are signed locally by another client (not
 * counted: no request leaves the function); the client then GETs S3 directly, one S3 GET per blob download.
 */

export interface CallCounts {
  /** `DynamoDB.GetItem`, `S3.PutObject`, … → number of commands sent. */
  calls: Record<string, number>;
  /** DynamoDB capacity units consumed (on-demand: read and write request units). */
  readUnits: number;
  writeUnits: number;
}

export interface CountedRequest {
  request: string;
  method: string;
  status: number;
  counts: CallCounts;
}

interface Counter {
  snapshot(): CallCounts;
}

interface ConsumedCapacity {
  CapacityUnits?: number;
  ReadCapacityUnits?: number;
  WriteCapacityUnits?: number;
}

const READ_COMMANDS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'TransactGetItems']);

/** Adds the counting middleware to both clients (initialize step: once per command, retries not counted). */
function attachCounter(dynamo: DynamoDBClient, s3: S3Client): Counter {
  const calls = new Map<string, number>();
  let readUnits = 0;
  let writeUnits = 0;
  const count = (key: string) => calls.set(key, (calls.get(key) ?? 0) + 1);
  const commandOf = (name: string) => name.replace(/Command$/, '');
  dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      const command = commandOf(context.commandName ?? 'unknown');
      count(`DynamoDB.${command}`);
      const input = args.input as Record<string, unknown>;
      input.ReturnConsumedCapacity ??= 'TOTAL';
      const result = await next(args);
      const consumed = (result.output as { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] }).ConsumedCapacity;
      for (const entry of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
        if (entry.ReadCapacityUnits !== undefined || entry.WriteCapacityUnits !== undefined) {
          readUnits += entry.ReadCapacityUnits ?? 0;
          writeUnits += entry.WriteCapacityUnits ?? 0;
        } else if (READ_COMMANDS.has(command)) {
          readUnits += entry.CapacityUnits ?? 0;
        } else {
          writeUnits += entry.CapacityUnits ?? 0;
        }
      }
      return result;
    },
    { step: 'initialize', name: 'benchDynamoDbCounter' },
  );
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      count(`S3.${commandOf(context.commandName ?? 'unknown')}`);
      return next(args);
    },
    { step: 'initialize', name: 'benchS3Counter' },
  );
  return { snapshot: () => ({ calls: Object.fromEntries(calls), readUnits, writeUnits }) };
}

/** What happened between two snapshots. */
export function difference(after: CallCounts, before: CallCounts): CallCounts {
  const calls: Record<string, number> = {};
  for (const [key, value] of Object.entries(after.calls)) {
    const delta = value - (before.calls[key] ?? 0);
    if (delta !== 0) calls[key] = delta;
  }
  return { calls, readUnits: after.readUnits - before.readUnits, writeUnits: after.writeUnits - before.writeUnits };
}

const MIB = 1024 * 1024;
const NAME = 'bench/app';


/** Runs every request type once (uploads in the shapes clients use) and returns the calls each one made. */
export async function countAwsCalls(): Promise<CountedRequest[]> {
  const dev = await startDevAws({ logLevel: 'ERROR' });
  const counter = attachCounter(dev.local.dynamo, dev.local.s3);
  const results: CountedRequest[] = [];
  const send = async (request: string, method: string, path: string, init: { body?: Uint8Array; headers?: Record<string, string>; uncounted?: boolean } = {}) => {
    const before = counter.snapshot();
    const response = await fetch(new URL(path, dev.url), { method, redirect: 'manual', headers: init.headers ?? {}, ...(init.body ? { body: new Uint8Array(init.body) } : {}) });
    await response.arrayBuffer();
    if (!init.uncounted) results.push({ request, method, status: response.status, counts: difference(counter.snapshot(), before) });
    if (response.status >= 400) throw new Error(`${request}: ${method} ${path} answered ${response.status}`);
    return response;
  };
  const location = (response: Response) => response.headers.get('location')!;
  const withQuery = (url: string, query: string) => `${url}${url.includes('?') ? '&' : '?'}${query}`;
  try {
    await send('API version check (GET /v2/)', 'GET', '/v2/');

    // docker / skopeo / crane: POST, one streamed PATCH, PUT ?digest= (a small layer: under one S3 part)
    const small = randomBytes(1 * MIB);
    let upload = location(await send('upload start (POST)', 'POST', `/v2/${NAME}/blobs/uploads/`));
    upload = location(await send('upload PATCH, 1 MiB (whole small blob)', 'PATCH', upload, { body: small, headers: { 'content-type': 'application/octet-stream' } }));
    await send('upload complete (PUT ?digest=, empty), small blob', 'PUT', withQuery(upload, `digest=${digestOf(small)}`));

    // a 12 MiB layer in 4 MiB chunks (what `ocireg push` and `ocireg proxy` send on AWS)
    const large = randomBytes(12 * MIB);
    upload = location(await send('upload start (POST), chunked blob', 'POST', `/v2/${NAME}/blobs/uploads/`));
    for (let start = 0, part = 1; start < large.length; start += 4 * MIB, part++) {
      const chunk = large.subarray(start, start + 4 * MIB);
      upload = location(
        await send(`upload PATCH ${part} of 3 (4 MiB, Content-Range)`, 'PATCH', upload, {
          body: chunk,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${start + chunk.length - 1}` },
        }),
      );
    }
    await send('upload complete (PUT ?digest=, empty), 12 MiB blob', 'PUT', withQuery(upload, `digest=${digestOf(large)}`));

    // containerd / buildkit: POST, then one PUT carrying the whole blob
    const layers: Uint8Array[] = [small, large];
    for (let i = 0; i < 3; i++) {
      const layer = randomBytes(256 * 1024);
      layers.push(layer);
      // Counted once; the other two only complete the image's five layers.
      const uncounted = i > 0;
      const start = location(await send('upload start (POST), monolithic PUT', 'POST', `/v2/${NAME}/blobs/uploads/`, { uncounted }));
      await send('monolithic PUT ?digest= with a 256 KiB body', 'PUT', withQuery(start, `digest=${digestOf(layer)}`), {
        body: layer,
        headers: { 'content-type': 'application/octet-stream' },
        uncounted,
      });
    }
    // oras: POST ?digest= with the body (single-request upload)
    const config = Buffer.from(JSON.stringify({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((layer) => digestOf(layer)) } }));
    await send('single-request upload (POST ?digest= with body)', 'POST', `/v2/${NAME}/blobs/uploads/?digest=${digestOf(config)}`, {
      body: config,
      headers: { 'content-type': 'application/octet-stream' },
    });
    await send('cross-repository mount (POST ?mount=&from=)', 'POST', `/v2/bench/other/blobs/uploads/?mount=${digestOf(small)}&from=${NAME}`);

    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
        layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(layer), size: layer.length })),
      }),
    );
    const manifestType = { 'content-type': 'application/vnd.oci.image.manifest.v1+json' };
    await send('manifest PUT by tag (5 layers)', 'PUT', `/v2/${NAME}/manifests/v1`, { body: manifest, headers: manifestType });
    await send('manifest PUT, same manifest, another tag', 'PUT', `/v2/${NAME}/manifests/v2`, { body: manifest, headers: manifestType });

    const accept = { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' };
    await send('manifest HEAD by tag', 'HEAD', `/v2/${NAME}/manifests/v1`, { headers: accept });
    await send('manifest GET by tag', 'GET', `/v2/${NAME}/manifests/v1`, { headers: accept });
    await send('manifest GET by digest', 'GET', `/v2/${NAME}/manifests/${digestOf(manifest)}`, { headers: accept });
    await send('blob HEAD', 'HEAD', `/v2/${NAME}/blobs/${digestOf(large)}`);
    await send('blob GET (307 to a presigned S3 URL)', 'GET', `/v2/${NAME}/blobs/${digestOf(large)}`);
    await send('tags list', 'GET', `/v2/${NAME}/tags/list`);
    await send('referrers list', 'GET', `/v2/${NAME}/referrers/${digestOf(manifest)}`);
  } finally {
    await dev.stop();
  }
  results.push(...(await countAuthCalls()));
  return results;
}

/**
 * The same registry with Docker token auth on (`dev:aws --auth`): what a token costs, and that a request with a
 * bearer token costs no more than an anonymous one (the JWT is checked locally, without a storage read).
 */
async function countAuthCalls(): Promise<CountedRequest[]> {
  const dev = await startDevAws({ logLevel: 'ERROR', auth: true });
  try {
    const identities = new DynamoDbIdentityStore({ dynamo: dev.local.dynamo, table: dev.names.table });
    await identities.createUser({ name: 'bench', admin: false, createdAt: Date.now() });
    await identities.setGrant({ user: 'bench', glob: 'bench/**', level: 'push' });
    const secret = newTokenSecret();
    await identities.createToken({ id: secret.id, user: 'bench', secretHash: secret.secretHash, createdAt: Date.now() });
    const counter = attachCounter(dev.local.dynamo, dev.local.s3);
    const results: CountedRequest[] = [];
    const send = async (request: string, method: string, path: string, headers: Record<string, string> = {}) => {
      const before = counter.snapshot();
      const response = await fetch(new URL(path, dev.url), { method, headers, redirect: 'manual' });
      const body = await response.text();
      results.push({ request, method, status: response.status, counts: difference(counter.snapshot(), before) });
      return body;
    };
    await send('with auth: anonymous request (401 challenge)', 'GET', `/v2/${NAME}/manifests/v1`);
    const basic = `Basic ${Buffer.from(`bench:${secret.token}`).toString('base64')}`;
    const body = await send('with auth: token (GET /token, Basic, one pull scope)', 'GET', `/token?service=ocireg&scope=${encodeURIComponent(`repository:${NAME}:pull`)}`, {
      authorization: basic,
    });
    const token = (JSON.parse(body) as { token: string }).token;
    await send('with auth: blob HEAD with a bearer token (404: no such blob)', 'HEAD', `/v2/${NAME}/blobs/sha256:${'0'.repeat(64)}`, { authorization: `Bearer ${token}` });
    return results;
  } finally {
    await dev.stop();
  }
}

/** The counts as a markdown table: one row per request, calls as `Command×n`. */
export function renderCountsTable(results: CountedRequest[]): string {
  const lines = [
    '| request | status | DynamoDB calls | S3 calls | DynamoDB RRU | DynamoDB WRU |',
    '| --- | ---: | --- | --- | ---: | ---: |',
  ];
  for (const result of results) {
    const of = (service: string) =>
      Object.entries(result.counts.calls)
        .filter(([key]) => key.startsWith(`${service}.`))
        .map(([key, n]) => `${key.slice(service.length + 1)}${n > 1 ? ` ×${n}` : ''}`)
        .join(', ') || '–';
    lines.push(
      `| ${result.request} | ${result.status} | ${of('DynamoDB')} | ${of('S3')} | ${formatUnits(result.counts.readUnits)} | ${formatUnits(result.counts.writeUnits)} |`,
    );
  }
  return lines.join('\n');
}

function formatUnits(units: number): string {
  return units === 0 ? '–' : String(Math.round(units * 100) / 100);
}

import { randomBytes } from 'node:crypto';
import { createServer, IncomingMessage, ServerResponse, type Server } from 'node:http';
import { Socket, type AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpTransport } from '../../lib/client/http-transport.ts';
import { ChunkSender } from '../../lib/proxy/chunk-sender.ts';
import { UpstreamAnswer } from '../../lib/proxy/client-answers.ts';
import { exchangeOf, type Exchange } from '../../lib/proxy/exchange.ts';
import { TokenReplay } from '../../lib/proxy/token-replay.ts';
import { UploadTracker, type TrackedUpload } from '../../lib/proxy/upload-tracker.ts';
import { UpstreamAddress } from '../../lib/proxy/upstream-address.ts';
import { UpstreamCaller } from '../../lib/proxy/upstream-caller.ts';

interface Seen {
  method: string;
  contentRange: string | undefined;
  bytes: number;
}

/**
 * A fake upstream holding one upload at `/v2/team/app/blobs/uploads/u1`, its bytes appended in order. Each test
 * sets `answer`, which may answer a request itself (returning true) or leave it to the default: 202 with Range for
 * an in-order PATCH, 416 for an out-of-order one, 204 with Range for GET.
 */
let server: Server;
let transport: HttpTransport;
let address: UpstreamAddress;
let stored: Buffer;
let seen: Seen[];
let answer: (req: IncomingMessage, res: ServerResponse, body: Buffer, start: number) => boolean;

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const contentRange = req.headers['content-range'];
    seen.push({ method: req.method!, contentRange, bytes: body.byteLength });
    const start = contentRange === undefined ? -1 : Number(contentRange.split('-')[0]);
    if (answer(req, res, body, start)) return;
    const range = { range: `0-${Math.max(stored.byteLength - 1, 0)}`, location: '/v2/team/app/blobs/uploads/u1' };
    if (req.method === 'GET') return res.writeHead(204, range).end();
    if (start !== stored.byteLength) return res.writeHead(416, range).end();
    stored = Buffer.concat([stored, body]);
    res.writeHead(202, { range: `0-${stored.byteLength - 1}`, location: '/v2/team/app/blobs/uploads/u1' }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  address = new UpstreamAddress(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
afterEach(() => transport.close());
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function setup(): { sender: ChunkSender; exchange: Exchange; upload: TrackedUpload } {
  stored = Buffer.alloc(0);
  seen = [];
  answer = () => false;
  transport = new HttpTransport();
  const tracker = new UploadTracker(address, 1024);
  const caller = new UpstreamCaller(transport, new TokenReplay(transport), { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 });
  const req = new IncomingMessage(new Socket());
  req.url = '/v2/team/app/blobs/uploads/u1';
  const exchange = exchangeOf(req, new ServerResponse(req));
  const upload = tracker.observe('POST', '/v2/team/app/blobs/uploads/', 202, { location: '/v2/team/app/blobs/uploads/u1', range: '0-0' })!;
  return { sender: new ChunkSender(caller, tracker, address), exchange, upload };
}

describe('ChunkSender', () => {
  it('sends chunks as PATCHes with Content-Range from the upload\'s offset, which each 202 moves on', async () => {
    const { sender, exchange, upload } = setup();
    const blob = randomBytes(10);

    await sender.send(exchange, upload, blob.subarray(0, 4));
    const last = await sender.send(exchange, upload, blob.subarray(4));

    expect(seen.map((s) => [s.method, s.contentRange, s.bytes])).toEqual([['PATCH', '0-3', 4], ['PATCH', '4-9', 6]]);
    expect(last.status).toBe(202);
    expect(upload.offset).toBe(10);
    expect(stored.equals(blob)).toBe(true);
  });

  it('asks where the upload stands when an answer is lost after the upstream stored the chunk, and does not send it again', async () => {
    // Prepare: the second PATCH is stored, then its connection drops before the answer
    const { sender, exchange, upload } = setup();
    const blob = randomBytes(12);
    answer = (req, res, body, start) => {
      if (req.method !== 'PATCH' || start !== 4 || seen.filter((s) => s.method === 'PATCH').length !== 2) return false;
      stored = Buffer.concat([stored, body]);
      res.socket!.destroy();
      return true;
    };

    // Act
    await sender.send(exchange, upload, blob.subarray(0, 4));
    const second = await sender.send(exchange, upload, blob.subarray(4, 8));
    await sender.send(exchange, upload, blob.subarray(8));

    // Assess
    expect(seen.map((s) => [s.method, s.contentRange])).toEqual([['PATCH', '0-3'], ['PATCH', '4-7'], ['GET', undefined], ['PATCH', '8-11']]);
    expect(second).toMatchObject({ status: 202, headers: { range: '0-7', location: '/v2/team/app/blobs/uploads/u1' } });
    expect(stored.equals(blob)).toBe(true);
  });

  it('sends only the part of a chunk the upstream lacks, after a 202 that kept less or a 5xx that kept some', async () => {
    // Prepare: the first PATCH keeps 3 of 8 bytes and says so; the next keeps 2 more and fails with 503
    const { sender, exchange, upload } = setup();
    const blob = randomBytes(8);
    answer = (req, res, body) => {
      const patches = seen.filter((s) => s.method === 'PATCH').length;
      if (req.method !== 'PATCH' || patches > 2) return false;
      stored = Buffer.concat([stored, body.subarray(0, patches === 1 ? 3 : 2)]);
      if (patches === 1) res.writeHead(202, { range: `0-${stored.byteLength - 1}` }).end();
      else res.writeHead(503).end();
      return true;
    };

    // Act
    const last = await sender.send(exchange, upload, blob);

    // Assess
    expect(seen.map((s) => [s.method, s.contentRange, s.bytes])).toEqual([
      ['PATCH', '0-7', 8],
      ['PATCH', '3-7', 5],
      ['GET', undefined, 0],
      ['PATCH', '5-7', 3],
    ]);
    expect(last.headers.range).toBe('0-7');
    expect(stored.equals(blob)).toBe(true);
  });

  it('takes a 416 as a reason to ask, and resumes from the offset the upstream reports', async () => {
    // Prepare: the tracker believes 0, the upstream already holds 4 bytes (another proxy process sent them)
    const { sender, exchange, upload } = setup();
    const blob = randomBytes(8);
    stored = blob.subarray(0, 4);
    upload.offset = 0;

    // Act
    await sender.send(exchange, upload, blob);

    // Assess
    expect(seen.map((s) => [s.method, s.contentRange, s.bytes])).toEqual([['PATCH', '0-7', 8], ['GET', undefined, 0], ['PATCH', '4-7', 4]]);
    expect(stored.equals(blob)).toBe(true);
  });

  it('gives up after the retry policy\'s attempts with the upstream\'s last answer', async () => {
    const { sender, exchange, upload } = setup();
    answer = (req, res) => (req.method === 'PATCH' ? (res.writeHead(503).end(), true) : false);

    const sent = sender.send(exchange, upload, randomBytes(4));

    await expect(sent).rejects.toBeInstanceOf(UpstreamAnswer);
    await expect(sent).rejects.toMatchObject({ result: { status: 503 } });
    expect(seen.filter((s) => s.method === 'PATCH')).toHaveLength(3);
  });

  it('relays a refusal that retrying cannot change (400) at once', async () => {
    const { sender, exchange, upload } = setup();
    answer = (req, res) => (req.method === 'PATCH' ? (res.writeHead(400, { 'content-type': 'application/json' }).end('{"errors":[]}'), true) : false);

    await expect(sender.send(exchange, upload, randomBytes(4))).rejects.toMatchObject({ result: { status: 400 } });
    expect(seen).toHaveLength(1);
  });

  it('fails rather than resend when the upstream holds fewer bytes than the chunk\'s start (the proxy no longer has them)', async () => {
    const { sender, exchange, upload } = setup();
    await sender.send(exchange, upload, randomBytes(4));
    answer = (req, res) => {
      if (req.method === 'PATCH') return (res.writeHead(503).end(), true);
      return (res.writeHead(204, { range: '0-1' }).end(), true); // the upstream lost bytes 2-3
    };

    await expect(sender.send(exchange, upload, randomBytes(4))).rejects.toThrow(/upstream lost bytes of the upload \(it holds 2, the proxy no longer holds bytes before 4\)/);
  });

  it('fails with a clear error when the upstream answers a Range it cannot read', async () => {
    const { sender, exchange, upload } = setup();
    answer = (req, res) => (req.method === 'PATCH' ? (res.writeHead(202, { range: 'bytes */4' }).end(), true) : false);

    await expect(sender.send(exchange, upload, randomBytes(4))).rejects.toThrow(/upload Range the proxy cannot read/);
  });
});

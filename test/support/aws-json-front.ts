import { createServer, type IncomingMessage, type RequestListener } from 'node:http';
import { Readable } from 'node:stream';
import { writeAwsJsonError } from '../../lib/dev/secrets-manager-local.ts';
import { listen } from '../../lib/server/listen.ts';

/**
 * A loopback front for an AWS JSON-protocol service (lib/dev/secrets-manager-local.ts) that answers some requests
 * itself — an AWS error, or a canned body — and passes the others through. Tests point the real SDK client's
 * endpoint at it to see the code under test meet a service that fails first and then works.
 */

export interface AwsJsonCall {
  /** The operation, e.g. `GetSecretValue` (from `X-Amz-Target`). */
  operation: string;
  input: Record<string, unknown>;
}

/** An error by name, a canned body (with its status: 200 unless given, e.g. 400 for an error with extra fields), or pass. */
export type FrontAnswer = { error: string; status?: number; message?: string } | { body: Record<string, unknown>; status?: number } | undefined;

export interface AwsJsonFront {
  endpoint: string;
  /** Every call the front received, answered by it or passed through, in order. */
  calls: AwsJsonCall[];
  close(): Promise<void>;
}

/** `answer` decides per call: an error or body from the front, or undefined to pass the call to `service`. */
export async function startAwsJsonFront(service: RequestListener, answer: (call: AwsJsonCall, index: number) => FrontAnswer): Promise<AwsJsonFront> {
  const calls: AwsJsonCall[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      const raw = Buffer.concat(chunks);
      const call: AwsJsonCall = {
        operation: String(req.headers['x-amz-target'] ?? '').replace(/^[^.]*\./, ''),
        input: JSON.parse(raw.toString('utf8') || '{}') as Record<string, unknown>,
      };
      calls.push(call);
      const decided = answer(call, calls.length - 1);
      if (decided === undefined) return service(replay(req, raw), res);
      if ('error' in decided) return writeAwsJsonError(res, decided.status ?? 400, decided.error, decided.message ?? `${decided.error} (from the test front)`);
      const body = JSON.stringify(decided.body);
      res.writeHead(decided.status ?? 200, { 'content-type': 'application/x-amz-json-1.1', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    })();
  });
  const listening = await listen(server, 0, '127.0.0.1');
  return {
    endpoint: listening.url,
    calls,
    close: () => {
      const closed = listening.close();
      server.closeAllConnections();
      return closed;
    },
  };
}

/** The request again, its body readable a second time. */
function replay(req: IncomingMessage, body: Buffer): IncomingMessage {
  const again = Readable.from([body]) as unknown as IncomingMessage;
  return Object.assign(again, { method: req.method, url: req.url, headers: req.headers });
}

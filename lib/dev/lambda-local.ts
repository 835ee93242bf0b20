import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { listen } from '../server/listen.ts';

/**
 * Lambda's Invoke operation on loopback (REST-JSON: `POST /2015-03-31/functions/<name>/invocations`), for the real
 * SDK client pointed at it by endpoint: `InvocationType: Event` answers 202 at once and runs the function in this
 * process afterwards, as Lambda queues an asynchronous invocation; `RequestResponse` (the default) answers 200 with
 * the function's JSON result, or 200 with `X-Amz-Function-Error: Unhandled` when it throws. An unknown function is
 * 404 `ResourceNotFoundException`. Every invocation is recorded, for tests that count them.
 * @see https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
 */

export interface LocalInvocation {
  functionName: string;
  invocationType: string;
  payload: unknown;
}

export interface LambdaLocal {
  endpoint: string;
  invocations: LocalInvocation[];
  /** Resolves when every asynchronous invocation started so far has ended (whatever its outcome). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export type LocalFunction = (payload: unknown) => Promise<unknown>;

export async function startLambdaLocal(functions: Record<string, LocalFunction>, options: { onError?: (name: string, error: unknown) => void } = {}): Promise<LambdaLocal> {
  const invocations: LocalInvocation[] = [];
  const running = new Set<Promise<unknown>>();
  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
      const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        const text = body === undefined ? '' : JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': randomUUID(), 'content-length': String(Buffer.byteLength(text)), ...headers });
        res.end(text);
      };
      if (req.method !== 'POST' || !match) return answer(400, { message: `not an Invoke request: ${req.method} ${req.url}` }, { 'x-amzn-errortype': 'InvalidRequestContentException' });
      const functionName = decodeURIComponent(match[1]!);
      const fn = functions[functionName];
      if (!fn) return answer(404, { message: `Function not found: ${functionName}`, Type: 'User' }, { 'x-amzn-errortype': 'ResourceNotFoundException' });
      const invocationType = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
      let payload: unknown;
      try {
        payload = chunks.length === 0 ? {} : JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return answer(400, { message: 'Could not parse request body into json' }, { 'x-amzn-errortype': 'InvalidRequestContentException' });
      }
      invocations.push({ functionName, invocationType, payload });
      if (invocationType === 'Event') {
        const run = fn(payload).catch((error: unknown) => options.onError?.(functionName, error));
        running.add(run);
        void run.finally(() => running.delete(run));
        return answer(202, undefined);
      }
      try {
        return answer(200, (await fn(payload)) ?? null, { 'x-amz-executed-version': '$LATEST' });
      } catch (error) {
        return answer(200, { errorType: (error as Error)?.name ?? 'Error', errorMessage: (error as Error)?.message ?? String(error) }, { 'x-amz-function-error': 'Unhandled' });
      }
    })();
  });
  const listening = await listen(server, 0, '127.0.0.1');
  return {
    endpoint: listening.url,
    invocations,
    idle: async () => {
      while (running.size > 0) await Promise.all([...running]);
    },
    close: async () => {
      while (running.size > 0) await Promise.all([...running]);
      const closed = listening.close();
      server.closeAllConnections();
      await closed;
    },
  };
}

import { createServer } from 'node:http';

/** One AWS JSON request the recorder received: its X-Amz-Target and body. */
export interface RecordedPutEvents {
  target: string;
  body: { Entries: Array<{ EventBusName: string; Source: string; DetailType: string; Detail: string }> };
}

export interface EventBridgeRecorder {
  /** `http://127.0.0.1:<port>`: an EventBridge client's `endpoint`, or `AWS_ENDPOINT_URL_EVENTBRIDGE`. */
  readonly endpoint: string;
  /** Every request so far, in order of arrival; tests may empty it. */
  readonly recorded: RecordedPutEvents[];
  close(): Promise<void>;
}

/**
 * EventBridge has no emulator here: a loopback endpoint that records each AWS JSON request and answers as PutEvents
 * does, every entry accepted. The code under test keeps its production EventBridge client; only the endpoint differs.
 */
export async function startEventBridgeRecorder(): Promise<EventBridgeRecorder> {
  const recorded: RecordedPutEvents[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RecordedPutEvents['body'];
      recorded.push({ target: String(request.headers['x-amz-target']), body });
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify({ FailedEntryCount: 0, Entries: body.Entries.map((_, index) => ({ EventId: `e${index}` })) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    recorded,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

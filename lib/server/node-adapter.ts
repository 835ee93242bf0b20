import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { renderOciError } from '../http/error-response.ts';
import type { HttpHandler, HttpRequest, HttpResponse } from '../http/types.ts';
import { isRecyclableBody, RECYCLED_CHUNKS } from '../registry/recyclable-body.ts';

/**
 * node:http ⇄ the transport-neutral request/response. The request body is the IncomingMessage itself
 * (an async iterable of Buffers), so uploads stream straight to storage with Node's backpressure.
 */
export function toHttpRequest(req: IncomingMessage, scheme: string): HttpRequest {
  const url = req.url ?? '/';
  const queryAt = url.indexOf('?');
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  const request: HttpRequest = {
    method: req.method ?? 'GET',
    path: queryAt < 0 ? url : url.slice(0, queryAt),
    query: new URLSearchParams(queryAt < 0 ? '' : url.slice(queryAt + 1)),
    headers,
    body: req,
    scheme,
  };
  if (req.socket.remoteAddress !== undefined) request.sourceIp = req.socket.remoteAddress;
  return request;
}

/** The most of an unread request body we read and discard after answering early (above the 10 MiB HTTP API quota). */
const DRAIN_LIMIT_BYTES = 16 * 1024 * 1024;

/** Writes a response; a body stream that fails after the headers went out destroys the connection. */
export async function writeHttpResponse(req: IncomingMessage, res: ServerResponse, response: HttpResponse): Promise<void> {
  // A request whose body has not fully arrived (we answered early, e.g. 413): node drains it after the response. A
  // body of unknown or large size is not worth reading: close instead. A small one is drained, as Go's net/http does
  // (it reads up to 256 KiB): closing while the client still writes it makes the client fail with EPIPE before it
  // has read our answer, and the 413's explanation is lost (seen with `ocireg doctor` on a loaded machine).
  // `complete` is the parser's view: a bodiless or already-received request keeps its connection.
  // node's parser has refused a malformed Content-Length already; an absent one (chunked) is NaN here, so closed.
  if (!req.complete && !(Number(req.headers['content-length']) <= DRAIN_LIMIT_BYTES)) response.headers['connection'] = 'close';
  res.writeHead(response.status, response.headers);
  const body = response.body;
  if (body === undefined || req.method === 'HEAD') {
    res.end();
    if (body !== undefined && !(body instanceof Uint8Array)) destroyBody(body);
    return;
  }
  if (body instanceof Uint8Array) {
    res.end(body);
    return;
  }
  try {
    if (isRecyclableBody(body)) await writeChunkByChunk(body[RECYCLED_CHUNKS](), res);
    else await pipeline(body instanceof Readable ? body : Readable.from(body, { objectMode: false }), res);
  } catch {
    res.destroy();
  }
}

/**
 * Writes each chunk and waits until the socket took it before asking for the next, so the source may reuse its
 * buffer (see RECYCLED_CHUNKS). A connection that goes away ends the loop, which closes the source.
 */
async function writeChunkByChunk(chunks: AsyncIterable<Uint8Array>, res: ServerResponse): Promise<void> {
  let onClose!: () => void;
  const closed = new Promise<'closed'>((resolve) => (onClose = () => resolve('closed')));
  res.once('close', onClose);
  try {
    for await (const chunk of chunks) {
      if (res.destroyed) throw new Error('connection closed');
      const written = new Promise<'written'>((resolve, reject) => res.write(chunk, (error) => (error ? reject(error) : resolve('written'))));
      // A write whose callback never comes (the socket was destroyed) must not keep the loop, nor reject unobserved.
      written.catch(() => undefined);
      if ((await Promise.race([written, closed])) === 'closed') throw new Error('connection closed');
    }
    res.end();
  } finally {
    res.off('close', onClose);
  }
}

function destroyBody(body: AsyncIterable<Uint8Array>): void {
  if (body instanceof Readable) body.destroy();
}

/** The node:http request listener for a handler. */
export function nodeListener(handler: HttpHandler, scheme: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    handler(toHttpRequest(req, scheme))
      .then((response) => writeHttpResponse(req, res, response))
      .catch(() => {
        // The app renders its own errors; reaching here means a bug in an adapter. Never crash the process.
        if (!res.headersSent) {
          const { status, headers, body } = renderOciError('UNKNOWN', 'internal server error', undefined, { headers: { connection: 'close' } });
          res.writeHead(status, headers);
          res.end(body);
        } else {
          res.destroy();
        }
      });
  };
}

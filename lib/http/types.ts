import type { ByteSource } from '../registry/types.ts';

/**
 * The transport-neutral request and response every adapter speaks (node:http server, Lambda handler).
 * Bodies are async iterables of bytes rather than Web streams: a Node request is one already, a Lambda body
 * is one buffer, and large blobs stream without a Web-stream conversion per chunk.
 */
export interface HttpRequest {
  method: string;
  /** Path as received (percent-encoded), without the query string. */
  path: string;
  query: URLSearchParams;
  /** Case-insensitive request headers. */
  headers: Headers;
  body: ByteSource;
  /** The client's address, for logs and rate limits. */
  sourceIp?: string;
  /** `http` or `https`, and the Host the client used, to build absolute URLs (the token realm). */
  scheme?: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  /** Absent for HEAD and bodiless statuses. */
  body?: Uint8Array | ByteSource;
}

export type HttpHandler = (request: HttpRequest) => Promise<HttpResponse>;

/** One structured log line per request, written by the adapter. */
export interface RequestLog {
  method: string;
  path: string;
  status: number;
  durationMs: number;
  /** The route's operation, e.g. `manifest.put`, and the repository, when the path named one. */
  operation?: string;
  name?: string;
  error?: { code: string; message: string };
}

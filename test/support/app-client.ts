import { readAll, bytesOf } from '../../lib/registry/bytes.ts';
import { createRegistryApp } from '../../lib/http/app.ts';
import type { HttpHandler, RequestLog } from '../../lib/http/types.ts';
import { Registry } from '../../lib/registry/registry.ts';
import { MemoryBlobStore, type MemoryBlobStoreOptions } from '../../lib/storage/memory/memory-blob-store.ts';
import { MemoryMetadataStore } from '../../lib/storage/memory/memory-metadata-store.ts';

export interface TestResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  json(): any;
}

export interface CallOptions {
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** Send the body without Content-Length, as a chunked transfer (docker's streamed PATCH). */
  chunked?: boolean;
}

/** An in-process registry over memory stores and a caller speaking the transport-neutral request type. */
export function memoryRegistry(options: MemoryBlobStoreOptions = {}) {
  const blobs = new MemoryBlobStore(options);
  const metadata = new MemoryMetadataStore();
  const registry = new Registry({ blobs, metadata });
  const logs: Array<{ line: RequestLog; cause: unknown }> = [];
  const app = createRegistryApp({ registry, log: (line, cause) => logs.push({ line, cause }) });
  return { app, registry, blobs, metadata, logs, call: (method: string, url: string, options: CallOptions = {}) => call(app, method, url, options) };
}

export async function call(app: HttpHandler, method: string, url: string, options: CallOptions = {}): Promise<TestResponse> {
  const parsed = new URL(url, 'http://registry.test');
  const headers = new Headers(options.headers);
  const body = typeof options.body === 'string' ? new TextEncoder().encode(options.body) : options.body;
  if (body !== undefined) {
    if (options.chunked) headers.set('transfer-encoding', 'chunked');
    else if (!headers.has('content-length')) headers.set('content-length', String(body.byteLength));
  }
  const response = await app({
    method,
    path: parsed.pathname,
    query: parsed.searchParams,
    headers,
    body: body === undefined ? bytesOf() : bytesOf(body),
  });
  const bytes = response.body === undefined ? Buffer.alloc(0) : Buffer.from(response.body instanceof Uint8Array ? response.body : await readAll(response.body));
  return { status: response.status, headers: response.headers, body: bytes, json: () => JSON.parse(bytes.toString('utf8')) };
}

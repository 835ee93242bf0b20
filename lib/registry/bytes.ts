import type { ByteSource } from './types.ts';

/**
 * Passes `source` through, calling `onExceeded` (which must throw) as soon as more than `max` bytes have gone by,
 * so an oversized body is refused while it streams rather than after it was stored.
 */
export async function* limitBytes(source: ByteSource, max: number, onExceeded: (seen: number) => never): ByteSource {
  let seen = 0;
  for await (const chunk of source) {
    seen += chunk.byteLength;
    if (seen > max) onExceeded(seen);
    yield chunk;
  }
}

/** Reads a whole source into memory; for small bodies (manifests) only. */
export async function readAll(source: ByteSource): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of source) {
    chunks.push(chunk);
    length += chunk.byteLength;
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** A source of one buffer (a Lambda event body, a test fixture). */
export async function* bytesOf(...buffers: Uint8Array[]): ByteSource {
  for (const buffer of buffers) yield buffer;
}

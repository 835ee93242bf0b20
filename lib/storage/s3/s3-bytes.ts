import { payloadTooLarge } from '../../registry/errors.ts';
import type { ByteSource } from '../../registry/types.ts';

/** Reads a request body into memory, at most `max` bytes (the core enforces the limit too; this is the store's own guard). */
export async function collect(body: ByteSource, max: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += chunk.byteLength;
    if (length > max) throw payloadTooLarge(`append of more than ${max} bytes`, { max });
    chunks.push(chunk);
  }
  return concat(chunks);
}

/** One buffer of `chunks` (the chunk itself when there is one). */
export function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  return Buffer.concat(chunks);
}

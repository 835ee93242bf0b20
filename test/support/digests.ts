import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { parseDigest, type ParsedDigest } from '../../lib/registry/digest.ts';

/**
 * Digests computed the tests' own way (node:crypto), never through `lib/registry/digest.ts`: an expected digest that
 * came from the code under test could not catch that code being wrong (only parsing goes through the core).
 */

/** `sha256:<hex>` of the bytes (a string is hashed as UTF-8). */
export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** `sha256:<hex>` of a file, streamed a mebibyte at a time. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** The same digest parsed, as the BlobStore port takes it (`commit(state, digest, size)`). */
export function parsedSha256(bytes: Uint8Array | string): ParsedDigest {
  return parseDigest(sha256(bytes));
}

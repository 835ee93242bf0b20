/**
 * Cuts a byte stream into chunks of exactly `size` bytes, the last one shorter; an empty stream yields none.
 *
 * The chunks are views of one buffer, reused: a chunk is valid until the consumer asks for the next one, and the
 * stream is not read while the consumer holds it, so memory stays at one chunk however long the stream (and the
 * client sending it is held back by TCP meanwhile). `expectedLength`, a declared Content-Length, only keeps the
 * buffer small for a short body.
 */
export async function* chunksOf(body: AsyncIterable<Uint8Array>, size: number, expectedLength?: number): AsyncGenerator<Buffer, void, undefined> {
  if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`chunk size must be a positive integer, got ${size}`);
  const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(size, expectedLength ?? size)));
  let filled = 0;
  for await (const piece of body) {
    let at = 0;
    while (at < piece.byteLength) {
      const n = Math.min(piece.byteLength - at, buffer.byteLength - filled);
      buffer.set(piece.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === buffer.byteLength) {
        yield buffer.subarray(0, filled);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}

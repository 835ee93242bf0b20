import { describe, expect, it } from 'vitest';
import { chunksOf } from '../../lib/proxy/chunker.ts';

/** A body in pieces of the given sizes, bytes counting up from 0 (mod 256); `reads` counts the pieces taken. */
function body(...sizes: number[]): AsyncIterable<Buffer> & { reads: number } {
  const source = {
    reads: 0,
    async *[Symbol.asyncIterator]() {
      let next = 0;
      for (const size of sizes) {
        source.reads++;
        yield Buffer.from(Array.from({ length: size }, () => next++ % 256));
      }
    },
  };
  return source;
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of chunks) out.push(Buffer.from(chunk)); // copied: the chunker reuses its buffer
  return out;
}

const counting = (length: number) => Buffer.from(Array.from({ length }, (_, i) => i % 256));

describe('chunksOf', () => {
  it('cuts pieces that straddle chunk boundaries into full chunks, the last one shorter, bytes in order', async () => {
    const chunks = await collect(chunksOf(body(3, 5, 2), 4));
    expect(chunks.map((chunk) => chunk.byteLength)).toEqual([4, 4, 2]);
    expect(Buffer.concat(chunks).equals(counting(10))).toBe(true);
  });

  it('cuts one piece larger than several chunks', async () => {
    const chunks = await collect(chunksOf(body(10), 3));
    expect(chunks.map((chunk) => chunk.byteLength)).toEqual([3, 3, 3, 1]);
    expect(Buffer.concat(chunks).equals(counting(10))).toBe(true);
  });

  it('ends on an exact multiple of the chunk size without an empty chunk', async () => {
    expect((await collect(chunksOf(body(4, 4), 4))).map((chunk) => chunk.byteLength)).toEqual([4, 4]);
    expect((await collect(chunksOf(body(1, 1, 1, 1, 1, 1), 2))).map((chunk) => chunk.byteLength)).toEqual([2, 2, 2]);
  });

  it('yields nothing for an empty body, or one of empty pieces', async () => {
    expect(await collect(chunksOf(body(), 4))).toEqual([]);
    expect(await collect(chunksOf(body(0, 0), 4))).toEqual([]);
  });

  it('sizes its buffer by a declared length shorter than the chunk size', async () => {
    expect((await collect(chunksOf(body(10), 8, 4))).map((chunk) => chunk.byteLength)).toEqual([4, 4, 2]);
    expect((await collect(chunksOf(body(10), 4, 100))).map((chunk) => chunk.byteLength)).toEqual([4, 4, 2]);
  });

  it('hands out views of one buffer and reads no further while a chunk is held', async () => {
    // Prepare
    const source = body(1, 1, 1, 1, 1, 1, 1, 1, 1);
    const chunks = chunksOf(source, 4);

    // Act
    const first = (await chunks.next()).value as Buffer;
    const firstBytes = Buffer.from(first);
    const readsWhileHeld = source.reads;
    const second = (await chunks.next()).value as Buffer;

    // Assess
    expect(readsWhileHeld).toBe(4);
    expect(firstBytes.equals(Buffer.from([0, 1, 2, 3]))).toBe(true);
    expect(second.buffer).toBe(first.buffer);
    expect(second.byteOffset).toBe(first.byteOffset);
    expect(Buffer.from(second).equals(Buffer.from([4, 5, 6, 7]))).toBe(true);
    expect(first.equals(second)).toBe(true); // the first view now shows the second chunk's bytes
  });

  it('refuses a chunk size that is not a positive integer', async () => {
    await expect(collect(chunksOf(body(1), 0))).rejects.toThrow(RangeError);
    await expect(collect(chunksOf(body(1), 1.5))).rejects.toThrow(RangeError);
  });
});

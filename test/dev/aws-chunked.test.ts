import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AwsChunkedError, decodeAwsChunked } from '../../lib/dev/aws-chunked.ts';

/** Encodes `chunks` as the SDK does (hex size, CRLF, data, CRLF; the empty chunk; trailers; a blank line). */
function encode(chunks: Buffer[], trailers: string[] = [], extension = ''): Buffer {
  const parts: (Buffer | string)[] = [];
  for (const chunk of chunks) parts.push(`${chunk.length.toString(16)}${extension}\r\n`, chunk, '\r\n');
  parts.push(`0${extension}\r\n`, ...trailers.map((trailer) => `${trailer}\r\n`), '\r\n');
  return Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : part)));
}

const codeOf = (encoded: Buffer) => {
  try {
    decodeAwsChunked(encoded);
    return undefined;
  } catch (error) {
    return error instanceof AwsChunkedError ? error.code : 'not an AwsChunkedError';
  }
};

describe('decodeAwsChunked', () => {
  it('returns the data of every chunk and the trailers by lower-case name', () => {
    const chunks = [randomBytes(8192), randomBytes(10_000), randomBytes(5)];
    const decoded = decodeAwsChunked(encode(chunks, ['X-Amz-Checksum-CRC32:AAAAAA==']));
    expect(decoded.body.equals(Buffer.concat(chunks))).toBe(true);
    expect([...decoded.trailers]).toEqual([['x-amz-checksum-crc32', 'AAAAAA==']]);
  });

  it('reads signed chunks (chunk-signature extensions) and bodies without trailers', () => {
    const chunks = [randomBytes(9000), randomBytes(1)];
    const decoded = decodeAwsChunked(encode(chunks, [], `;chunk-signature=${'a'.repeat(64)}`));
    expect(decoded.body.equals(Buffer.concat(chunks))).toBe(true);
    expect(decoded.trailers.size).toBe(0);
  });

  it('refuses a chunk under 8 KiB that is not the last', () => {
    expect(codeOf(encode([randomBytes(8191), randomBytes(10_000)]))).toBe('InvalidChunkSizeError');
  });

  it('refuses a body cut short, a malformed size and data after the end', () => {
    const whole = encode([randomBytes(9000)], ['x-amz-checksum-crc32:AAAAAA==']);
    expect(codeOf(whole.subarray(0, 5000))).toBe('IncompleteBody');
    expect(codeOf(whole.subarray(0, whole.length - 2))).toBe('IncompleteBody');
    expect(codeOf(Buffer.concat([Buffer.from('zz\r\n'), whole]))).toBe('InvalidRequest');
    expect(codeOf(Buffer.concat([whole, Buffer.from('extra')]))).toBe('InvalidRequest');
  });
});

/**
 * Decodes an `aws-chunked` request body, the encoding AWS SDKs use for streamed uploads with a trailing checksum
 * (`Content-Encoding: aws-chunked`, `x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER`,
 * `x-amz-trailer: x-amz-checksum-crc32`, `x-amz-decoded-content-length: <n>`):
 *
 * ```
 * <size hex>[;chunk-signature=<sig>]\r\n<size bytes>\r\n      one per chunk, every one but the last ≥ 8 KiB
 * 0[;chunk-signature=<sig>]\r\n                                the final, empty chunk
 * <trailer name>:<value>\r\n                                  zero or more trailers (the checksum)
 * [x-amz-trailer-signature:<sig>\r\n]
 * \r\n                                                        (absent when there is no trailer)
 * ```
 * Chunk signatures (the signed `STREAMING-AWS4-HMAC-SHA256-PAYLOAD*` variants) are parsed and not verified.
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html
 */

/** S3's smallest chunk of an aws-chunked body, except the last one carrying data. */
export const MIN_AWS_CHUNK_SIZE = 8192;

export interface DecodedAwsChunked {
  body: Buffer;
  /** Trailer name (lower-case) → value. */
  trailers: Map<string, string>;
}

/** Why a body is not valid aws-chunked, with the S3 error code it earns. */
export class AwsChunkedError extends Error {
  readonly code: 'IncompleteBody' | 'InvalidChunkSizeError' | 'InvalidRequest';

  constructor(code: AwsChunkedError['code'], message: string) {
    super(message);
    this.name = 'AwsChunkedError';
    this.code = code;
  }
}

export function decodeAwsChunked(encoded: Buffer): DecodedAwsChunked {
  const chunks: Buffer[] = [];
  let at = 0;
  const line = (): string => {
    const end = encoded.indexOf('\r\n', at);
    if (end === -1) throw new AwsChunkedError('IncompleteBody', 'The request body terminated unexpectedly');
    const text = encoded.subarray(at, end).toString('latin1');
    at = end + 2;
    return text;
  };
  for (;;) {
    const header = line();
    const sizeField = header.split(';', 1)[0]!;
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizeField)) throw new AwsChunkedError('InvalidRequest', `malformed aws-chunked chunk header ${JSON.stringify(header.slice(0, 40))}`);
    const size = Number.parseInt(sizeField, 16);
    if (size === 0) break;
    if (at + size + 2 > encoded.length) throw new AwsChunkedError('IncompleteBody', 'The request body terminated unexpectedly');
    chunks.push(encoded.subarray(at, at + size));
    at += size;
    if (encoded[at] !== 0x0d || encoded[at + 1] !== 0x0a) throw new AwsChunkedError('InvalidRequest', 'aws-chunked chunk data is not followed by CRLF');
    at += 2;
  }
  // Only the last chunk that carries data may be under 8 KiB.
  for (const [index, chunk] of chunks.entries()) {
    if (index < chunks.length - 1 && chunk.length < MIN_AWS_CHUNK_SIZE) {
      throw new AwsChunkedError('InvalidChunkSizeError', `Only the last chunk is allowed to have a size less than ${MIN_AWS_CHUNK_SIZE} bytes (chunk ${index + 1} has ${chunk.length})`);
    }
  }
  const trailers = new Map<string, string>();
  for (;;) {
    // The SDK ends a body without trailers right after the empty chunk; after a trailer the blank line must follow.
    if (at >= encoded.length && trailers.size === 0) break;
    const trailer = line();
    if (trailer === '') break;
    const colon = trailer.indexOf(':');
    if (colon <= 0) throw new AwsChunkedError('InvalidRequest', `malformed aws-chunked trailer ${JSON.stringify(trailer.slice(0, 60))}`);
    trailers.set(trailer.slice(0, colon).trim().toLowerCase(), trailer.slice(colon + 1).trim());
  }
  if (at !== encoded.length) throw new AwsChunkedError('InvalidRequest', 'data after the end of the aws-chunked body');
  return { body: Buffer.concat(chunks), trailers };
}

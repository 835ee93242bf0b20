import { createHash } from 'node:crypto';
import { AwsChunkedError, decodeAwsChunked } from './aws-chunked.ts';
import { isS3ChecksumAlgorithm, s3Checksum, type S3ChecksumAlgorithm } from './s3-checksums.ts';

/**
 * S3's integrity rules, as pure functions over headers and bytes, for the strict S3 (lib/dev/strict-s3.ts does
 * the I/O). What real S3 refuses, with its error codes:
 *
 * | request | refused when | S3 answers |
 * | --- | --- | --- |
 * | any body | `aws-chunked` malformed / shorter than `x-amz-decoded-content-length` / a non-last chunk < 8 KiB | 400 InvalidRequest / 400 IncompleteBody / 403 InvalidChunkSizeError |
 * | any body | SigV4 payload hash (`x-amz-content-sha256`) ≠ SHA-256 of the body | 400 XAmzContentSHA256Mismatch |
 * | any body | `Content-MD5`, an `x-amz-checksum-*` header or the trailing checksum ≠ the body's | 400 BadDigest |
 * | any body | two checksums, or `x-amz-sdk-checksum-algorithm` without a checksum or trailer | 400 InvalidRequest |
 * | CreateMultipartUpload | FULL_OBJECT with SHA-1/SHA-256, COMPOSITE with CRC64NVME, a type without an algorithm | 400 InvalidRequest |
 * | UploadPart | the upload has an algorithm and the part another one (or none, unless FULL_OBJECT) | 400 InvalidRequest "Checksum Type mismatch" |
 * | CompleteMultipartUpload | a COMPOSITE upload's part listed without its checksum | 400 InvalidRequest |
 * | CompleteMultipartUpload | a part checksum listed ≠ the part's; a part uploaded with a checksum listed without it | 400 InvalidPart |
 * | CompleteMultipartUpload | another `x-amz-checksum-type` than Create's; a full-object checksum ≠ the object's | 400 InvalidRequest; 400 BadDigest |
 *
 * The last-but-one row is the SDK-default failure (CreateMultipartUpload without an algorithm, CRC32 parts,
 * Complete without part checksums): the UploadPart reference requires the part's algorithm to match Create's;
 * which error real S3 gives is taken from public reports (InvalidPart at Complete: aws/aws-sdk-go-v2#3005,
 * aws/aws-sdk-java-v2#6518, transloadit/uppy#6167). See docs/aws-assumptions.md.
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPart.html
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateMultipartUpload.html
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html
 * @see https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity-upload.html
 */

export interface S3Failure {
  status: number;
  code: string;
  message: string;
}

export interface S3ChecksumValue {
  algorithm: S3ChecksumAlgorithm;
  /** base64, as in the headers */
  value: string;
}

export type ChecksumType = 'COMPOSITE' | 'FULL_OBJECT';

/** What CreateMultipartUpload declared. */
export interface MultipartChecksum {
  algorithm?: S3ChecksumAlgorithm;
  type?: ChecksumType;
}

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

const failure = (status: number, code: string, message: string): S3Failure => ({ status, code, message });

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** The checksum headers a request carries (`x-amz-checksum-<algorithm>`), not the -type/-algorithm/-mode ones. */
function checksumHeaders(headers: Headers): [string, string][] {
  return Object.keys(headers)
    .filter((name) => name.startsWith('x-amz-checksum-') && !['x-amz-checksum-type', 'x-amz-checksum-algorithm', 'x-amz-checksum-mode'].includes(name))
    .map((name) => [name.slice('x-amz-checksum-'.length), header(headers, name) ?? '']);
}

/**
 * Checks a request body as S3 does and returns the bytes S3 would store (aws-chunked decoded) with the checksum
 * the request asked S3 to verify, if any.
 */
export function checkRequestBody(
  headers: Headers,
  raw: Buffer,
  options: { checksumHeadersNameObject?: boolean } = {},
): { body: Buffer; checksum?: S3ChecksumValue } | S3Failure {
  let body = raw;
  // CompleteMultipartUpload's x-amz-checksum-* headers are the whole object's (checkCompleteHeaders), not its XML's.
  const declared: [string, string][] = options.checksumHeadersNameObject ? [] : checksumHeaders(headers);
  const contentSha256 = header(headers, 'x-amz-content-sha256');
  const encodings = (header(headers, 'content-encoding') ?? '').split(',').map((part) => part.trim().toLowerCase());

  if (encodings.includes('aws-chunked') || contentSha256?.startsWith('STREAMING-')) {
    if (!encodings.includes('aws-chunked') || !contentSha256?.startsWith('STREAMING-')) {
      return failure(400, 'InvalidRequest', 'aws-chunked bodies need both Content-Encoding: aws-chunked and a STREAMING-* x-amz-content-sha256');
    }
    const decodedLength = Number(header(headers, 'x-amz-decoded-content-length'));
    if (!Number.isSafeInteger(decodedLength) || decodedLength < 0) return failure(411, 'MissingContentLength', 'You must provide the x-amz-decoded-content-length HTTP header.');
    let decoded;
    try {
      decoded = decodeAwsChunked(raw);
    } catch (error) {
      if (!(error instanceof AwsChunkedError)) throw error;
      return failure(error.code === 'InvalidChunkSizeError' ? 403 : 400, error.code, error.message);
    }
    if (decoded.body.length !== decodedLength) {
      return failure(400, 'IncompleteBody', `You did not provide the number of bytes specified by x-amz-decoded-content-length (${decodedLength}, received ${decoded.body.length})`);
    }
    const expected = (header(headers, 'x-amz-trailer') ?? '').split(',').map((name) => name.trim().toLowerCase()).filter(Boolean);
    for (const name of expected) {
      const value = decoded.trailers.get(name);
      if (value === undefined) return failure(400, 'InvalidRequest', `the trailer ${name} announced in x-amz-trailer is missing`);
      if (name.startsWith('x-amz-checksum-')) declared.push([name.slice('x-amz-checksum-'.length), value]);
    }
    body = decoded.body;
  } else if (contentSha256 !== undefined && /^[0-9a-f]{64}$/i.test(contentSha256)) {
    const actual = body.length === 0 ? EMPTY_SHA256 : createHash('sha256').update(body).digest('hex');
    if (actual !== contentSha256.toLowerCase()) {
      return failure(400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
  }

  const contentMd5 = header(headers, 'content-md5');
  if (contentMd5 !== undefined && createHash('md5').update(body).digest('base64') !== contentMd5) {
    return failure(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
  }

  if (declared.length > 1) return failure(400, 'InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
  const sdkAlgorithm = header(headers, 'x-amz-sdk-checksum-algorithm');
  if (declared.length === 0) {
    if (sdkAlgorithm !== undefined && !options.checksumHeadersNameObject) {
      return failure(400, 'InvalidRequest', 'x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.');
    }
    return { body };
  }
  const [[algorithm, value]] = declared as [[string, string]];
  if (!isS3ChecksumAlgorithm(algorithm)) return failure(400, 'InvalidRequest', `x-amz-checksum-${algorithm} is not a checksum algorithm S3 supports`);
  if (sdkAlgorithm !== undefined && sdkAlgorithm.toLowerCase() !== algorithm) {
    return failure(400, 'InvalidRequest', `x-amz-sdk-checksum-algorithm ${sdkAlgorithm} does not match the x-amz-checksum-${algorithm} sent`);
  }
  if (s3Checksum(algorithm, body) !== value) {
    return failure(400, 'BadDigest', `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`);
  }
  return { body, checksum: { algorithm, value } };
}

/** The algorithm and type a CreateMultipartUpload declares, or why S3 refuses them. */
export function checkCreateMultipart(headers: Headers): MultipartChecksum | S3Failure {
  const algorithmHeader = header(headers, 'x-amz-checksum-algorithm')?.toLowerCase();
  const typeHeader = header(headers, 'x-amz-checksum-type')?.toUpperCase();
  if (algorithmHeader === undefined) {
    if (typeHeader !== undefined) return failure(400, 'InvalidRequest', 'The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.');
    return {};
  }
  if (!isS3ChecksumAlgorithm(algorithmHeader)) return failure(400, 'InvalidRequest', `Checksum algorithm ${algorithmHeader} is not supported`);
  if (typeHeader !== undefined && typeHeader !== 'COMPOSITE' && typeHeader !== 'FULL_OBJECT') return failure(400, 'InvalidRequest', `Checksum type ${typeHeader} is not supported`);
  const type: ChecksumType = (typeHeader as ChecksumType | undefined) ?? (algorithmHeader === 'crc64nvme' ? 'FULL_OBJECT' : 'COMPOSITE');
  if (type === 'FULL_OBJECT' && (algorithmHeader === 'sha1' || algorithmHeader === 'sha256')) {
    return failure(400, 'InvalidRequest', `The FULL_OBJECT checksum type cannot be used with the ${algorithmHeader} checksum algorithm.`);
  }
  if (type === 'COMPOSITE' && algorithmHeader === 'crc64nvme') {
    return failure(400, 'InvalidRequest', 'The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.');
  }
  return { algorithm: algorithmHeader, type };
}

/**
 * Whether a part may join the upload, and the checksum S3 records for it: the one the part carried, or, for a
 * FULL_OBJECT upload whose part carried none, the one S3 computes itself.
 */
export function checkPartChecksum(upload: MultipartChecksum, part: S3ChecksumValue | undefined, body: Buffer): { recorded?: S3ChecksumValue } | S3Failure {
  if (upload.algorithm === undefined) return part ? { recorded: part } : {};
  if (part?.algorithm === upload.algorithm) return { recorded: part };
  if (part === undefined && upload.type === 'FULL_OBJECT') return { recorded: { algorithm: upload.algorithm, value: s3Checksum(upload.algorithm, body) } };
  return failure(400, 'InvalidRequest', `Checksum Type mismatch occurred, expected checksum Type: ${upload.algorithm}, actual checksum Type: ${part?.algorithm ?? 'null'}`);
}

/** One `<Part>` of a CompleteMultipartUpload body. */
export interface CompletedPart {
  number: number;
  etag: string;
  /** `<ChecksumCRC32>` etc., by lower-case algorithm. */
  checksums: Map<string, string>;
}

/** Parses the `<Part>` list of a CompleteMultipartUpload body. */
export function parseCompletedParts(xml: string): CompletedPart[] {
  return [...xml.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map(([, inner = '']) => ({
    number: Number(/<PartNumber>(\d+)<\/PartNumber>/.exec(inner)?.[1]),
    etag: (/<ETag>([\s\S]*?)<\/ETag>/.exec(inner)?.[1] ?? '').replace(/&quot;|"/g, ''),
    checksums: new Map([...inner.matchAll(/<Checksum([A-Z0-9]+)>([\s\S]*?)<\/Checksum\1>/g)].map(([, name = '', value = '']) => [name.toLowerCase(), value.trim()])),
  }));
}

const INVALID_PART = 'One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part\'s entity tag.';

/** The checksum rules of CompleteMultipartUpload for one listed part, given what UploadPart recorded for it. */
export function checkCompletedPartChecksum(upload: MultipartChecksum, part: CompletedPart, recorded: S3ChecksumValue | undefined): S3Failure | undefined {
  const expected = upload.algorithm ?? recorded?.algorithm;
  for (const [algorithm] of part.checksums) {
    if (algorithm !== expected) return failure(400, 'InvalidPart', `${INVALID_PART} (part ${part.number} lists a ${algorithm} checksum)`);
  }
  if (expected === undefined) return undefined;
  const listed = part.checksums.get(expected);
  if (listed === undefined) {
    if (upload.algorithm !== undefined && upload.type === 'COMPOSITE') {
      return failure(400, 'InvalidRequest', `The upload was created using a ${upload.algorithm} checksum. The complete request must include the checksum for each part. It was missing for part ${part.number} in the request.`);
    }
    // FULL_OBJECT uploads may leave part checksums out; a part uploaded with a checksum to an upload created
    // without an algorithm may not (the SDK-default failure, see the table above).
    if (upload.algorithm !== undefined) return undefined;
    return failure(400, 'InvalidPart', `${INVALID_PART} (part ${part.number} was uploaded with a ${expected} checksum that the request does not list)`);
  }
  if (listed !== recorded?.value) return failure(400, 'InvalidPart', `${INVALID_PART} (the ${expected} checksum of part ${part.number} does not match)`);
  return undefined;
}

/** The checksum headers of CompleteMultipartUpload itself: the type must be Create's, a full-object value must match. */
export function checkCompleteHeaders(upload: MultipartChecksum, headers: Headers, object: () => Buffer): S3Failure | undefined {
  const type = header(headers, 'x-amz-checksum-type')?.toUpperCase();
  if (type !== undefined && upload.algorithm !== undefined && type !== upload.type) {
    return failure(400, 'InvalidRequest', `The upload was created using the ${upload.type} checksum mode. The complete request must use the same checksum mode.`);
  }
  const declared = checksumHeaders(headers);
  if (declared.length === 0) return undefined;
  if (declared.length > 1) return failure(400, 'InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
  const [[algorithm, value]] = declared as [[string, string]];
  if (upload.algorithm === undefined || algorithm !== upload.algorithm || upload.type !== 'FULL_OBJECT' || !isS3ChecksumAlgorithm(algorithm)) {
    return upload.type === 'COMPOSITE' ? undefined : failure(400, 'InvalidRequest', `x-amz-checksum-${algorithm} does not match the upload's checksum (${upload.algorithm ?? 'none'})`);
  }
  if (s3Checksum(algorithm, object()) !== value) return failure(400, 'BadDigest', `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`);
  return undefined;
}

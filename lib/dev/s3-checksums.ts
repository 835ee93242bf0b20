import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * The checksums S3 computes and verifies (`x-amz-checksum-<algorithm>`, base64 of the big-endian value), for the
 * strict S3 in front of s3rver. Lower-case names, as in the header names.
 * @see https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity-upload.html
 */
export const S3_CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
export type S3ChecksumAlgorithm = (typeof S3_CHECKSUM_ALGORITHMS)[number];

export function isS3ChecksumAlgorithm(value: string): value is S3ChecksumAlgorithm {
  return (S3_CHECKSUM_ALGORITHMS as readonly string[]).includes(value);
}

/** Base64 of `algorithm` over `bytes`, as S3 writes it in `x-amz-checksum-*` headers and XML. */
export function s3Checksum(algorithm: S3ChecksumAlgorithm, bytes: Uint8Array): string {
  switch (algorithm) {
    case 'crc32':
      return uint32(crc32(bytes));
    case 'crc32c':
      return uint32(crc32c(bytes));
    case 'crc64nvme':
      return crc64nvme(bytes);
    case 'sha1':
    case 'sha256':
      return createHash(algorithm).update(bytes).digest('base64');
  }
}

function uint32(value: number): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0);
  return out.toString('base64');
}

/** Reflected CRC table for a 32-bit polynomial. */
function table32(polynomial: number): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ polynomial : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

let crc32cTable: Uint32Array | undefined;

/** CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, init and final XOR all ones. */
function crc32c(bytes: Uint8Array): number {
  const table = (crc32cTable ??= table32(0x82f63b78));
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

let crc64Tables: { hi: Uint32Array; lo: Uint32Array } | undefined;

/**
 * CRC-64/NVME: reflected polynomial 0x9A6C9329AC4BC9B5, init and final XOR all ones. The 64-bit register is
 * kept as two 32-bit halves (BigInt per byte would take seconds for a 5 MiB part).
 */
function crc64nvme(bytes: Uint8Array): string {
  if (!crc64Tables) {
    const hi = new Uint32Array(256);
    const lo = new Uint32Array(256);
    const polyHi = 0x9a6c9329;
    const polyLo = 0xac4bc9b5;
    for (let n = 0; n < 256; n++) {
      let h = 0;
      let l = n;
      for (let k = 0; k < 8; k++) {
        const carry = l & 1;
        l = ((l >>> 1) | ((h & 1) << 31)) >>> 0;
        h = h >>> 1;
        if (carry) {
          h = (h ^ polyHi) >>> 0;
          l = (l ^ polyLo) >>> 0;
        }
      }
      hi[n] = h;
      lo[n] = l;
    }
    crc64Tables = { hi, lo };
  }
  const { hi: tableHi, lo: tableLo } = crc64Tables;
  let h = 0xffffffff;
  let l = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) {
    const index = (l ^ bytes[i]!) & 0xff;
    l = (((l >>> 8) | (h << 24)) ^ tableLo[index]!) >>> 0;
    h = ((h >>> 8) ^ tableHi[index]!) >>> 0;
  }
  const out = Buffer.alloc(8);
  out.writeUInt32BE((h ^ 0xffffffff) >>> 0, 0);
  out.writeUInt32BE((l ^ 0xffffffff) >>> 0, 4);
  return out.toString('base64');
}

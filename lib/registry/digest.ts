import { createHash } from 'node:crypto';
import { OciError } from './errors.ts';

/**
 * Content digests (`algorithm:encoded`).
 * @see https://github.com/opencontainers/image-spec/blob/v1.1.1/descriptor.md#digests
 */

export type DigestAlgorithm = 'sha256' | 'sha512';

const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
  digest: string;
}

/** Parses a digest of a supported algorithm, else throws DIGEST_INVALID (or UNSUPPORTED for a well-formed unknown algorithm). */
export function parseDigest(value: string): ParsedDigest {
  if (!DIGEST_GRAMMAR.test(value)) {
    throw new OciError('DIGEST_INVALID', 'invalid digest format', { digest: value });
  }
  const [algorithm, hex] = value.split(':', 2) as [string, string];
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new OciError('UNSUPPORTED', `digest algorithm ${algorithm} is not supported`, { digest: value });
  }
  if (hex.length !== ENCODED_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(hex)) {
    throw new OciError('DIGEST_INVALID', `invalid ${algorithm} digest`, { digest: value });
  }
  return { algorithm, hex, digest: value };
}

/** Whether {@link parseDigest} accepts `value`. */
export function isValidDigest(value: string): boolean {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function isDigest(reference: string): boolean {
  return reference.includes(':');
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

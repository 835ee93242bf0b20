import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Access token strings: `ocireg_<id>_<secret>`. The id (8 random bytes, hex) finds the stored token in one read;
 * the secret (32 random bytes, base64url) is shown once and stored only as its SHA-256.
 */
const FORMAT = /^ocireg_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface NewTokenSecret {
  id: string;
  token: string;
  secretHash: string;
}

export function newTokenSecret(): NewTokenSecret {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, token: `ocireg_${id}_${secret}`, secretHash: hashSecret(secret) };
}

export function parseTokenSecret(token: string): { id: string; secret: string } | undefined {
  const match = FORMAT.exec(token);
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function secretMatches(secret: string, secretHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(secretHash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export type PresignCheck = { valid: true } | { valid: false; reason: string };

/**
 * Verifies a SigV4 presigned URL as S3 does: recomputes the signature from the URL (method, path, every query
 * parameter but the signature, the signed headers) and checks the expiry.
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
 */
export function verifyPresignedUrl(
  url: string,
  credentials: SigningCredentials,
  options: { method?: string; headers?: Record<string, string | undefined>; now?: number } = {},
): PresignCheck {
  const parsed = new URL(url);
  const query = parsed.searchParams;
  const algorithm = query.get('X-Amz-Algorithm');
  const credential = query.get('X-Amz-Credential');
  const amzDate = query.get('X-Amz-Date');
  const expires = Number(query.get('X-Amz-Expires'));
  const signedHeaders = query.get('X-Amz-SignedHeaders');
  const signature = query.get('X-Amz-Signature');
  if (algorithm !== 'AWS4-HMAC-SHA256' || !credential || !amzDate || !signedHeaders || !signature || !Number.isInteger(expires)) {
    return { valid: false, reason: 'not a SigV4 presigned URL' };
  }
  const [accessKeyId, date, region, service, terminator] = credential.split('/');
  if (accessKeyId !== credentials.accessKeyId) return { valid: false, reason: `unknown access key ${accessKeyId}` };
  if (!date || !region || !service || terminator !== 'aws4_request' || !amzDate.startsWith(date)) return { valid: false, reason: 'malformed credential scope' };
  const signedAt = Date.parse(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  if (Number.isNaN(signedAt)) return { valid: false, reason: 'malformed X-Amz-Date' };
  if (expires < 1 || expires > 604_800) return { valid: false, reason: 'X-Amz-Expires must be between 1 and 604800 seconds' };

  const canonicalUri = parsed.pathname
    .split('/')
    .map((segment) => rfc3986(decodeURIComponent(segment)))
    .join('/');
  const canonicalQuery = [...query]
    .filter(([key]) => key !== 'X-Amz-Signature')
    .map(([key, value]) => [rfc3986(key), rfc3986(value)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
  const headerNames = signedHeaders.split(';');
  const headerLines: string[] = [];
  for (const name of headerNames) {
    const value = name === 'host' ? (options.headers?.host ?? parsed.host) : options.headers?.[name];
    if (value === undefined) return { valid: false, reason: `signed header ${name} is missing` };
    headerLines.push(`${name}:${value.trim().replace(/\s+/g, ' ')}\n`);
  }
  const payloadHash = query.get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD';
  const canonicalRequest = [options.method ?? 'GET', canonicalUri, canonicalQuery, headerLines.join(''), signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  let key: Buffer = hmac(`AWS4${credentials.secretAccessKey}`, date);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const expected = Buffer.from(createHmac('sha256', key).update(stringToSign).digest('hex'));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { valid: false, reason: 'signature does not match' };
  if ((options.now ?? Date.now()) > signedAt + expires * 1000) return { valid: false, reason: 'expired' };
  return { valid: true };
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
